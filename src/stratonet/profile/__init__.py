"""Profiling: one plain function per step, DataFrame in, DataFrame out (like pycytominer).

>>> from stratonet.profile import aggregate, annotate, normalize, feature_select, spherize, run_profile

Each step takes ``features=`` explicitly (default: the numeric non-``Metadata_`` columns), so deep features
(``DNA_high_0123``) work as well as CellProfiler ones.
"""

from stratonet.profile.aggregate import aggregate
from stratonet.profile.annotate import annotate
from stratonet.profile.controls import negcon_mask, treatment_columns
from stratonet.profile.config import ProfileConfig
from stratonet.profile.normalize import normalize
from stratonet.profile.pipeline import run_profile
from stratonet.profile.select import feature_select
from stratonet.profile.spherize import spherize

__all__ = [
    "aggregate", "annotate", "normalize", "feature_select", "spherize", "run_profile", "negcon_mask",
    "treatment_columns", "ProfileConfig",
]
