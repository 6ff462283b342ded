"""The options of the profiling chain (:func:`stratonet.profile.pipeline.run_profile`) in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from stratonet.profile.protect import ProtectConfig

#: Feature selection of the chain by default (pycytominer's usual three).
DEFAULT_SELECT = ("variance_threshold", "correlation_threshold", "drop_na_columns")


@dataclass(frozen=True)
class ProfileConfig:
    """How features become profiles; built once by ``stratonet profile``, the demo or the Python caller.

    Attributes
    ----------
    aggregate_level : {"site", "well", "treatment"} or None
        Aggregate first (None: keep rows as they are).
    operation : {"median", "mean"}
    normalize_method : {"standardize", "mad_robustize", "none"}
    by_plate : bool
        Normalise per plate (True) or globally.
    reference : {"negcon", "all"}
        Rows the normalisation (and the spherizing) is fitted on.
    select : list of str or comma-separated str
        Feature-selection operations (see :func:`stratonet.profile.select.feature_select`); empty for none.
    corr_threshold : float
    blocklist : list of str, optional
        Features dropped by the ``blocklist`` operation (default pycytominer's list).
    spherize : bool
        ZCA-whiten after selection, fitted on the reference rows.
    spherize_method : str
    spherize_epsilon : float
    na_cutoff : float
        ``drop_na_columns`` drops features with more than this share of missing values (0: any).
    zero_mad, mad_epsilon
        See :func:`stratonet.profile.normalize.normalize` (``zero_mad``, ``epsilon``).
    protect : ProtectConfig, optional
        Selection guard (default on); see :mod:`stratonet.profile.protect`.
    controls : stratonet.core.controlnames.ControlNames, optional
        How the table names its controls; applied after the plate map, before normalisation.
    """

    aggregate_level: str | None = "well"
    operation: str = "median"
    normalize_method: str = "mad_robustize"
    by_plate: bool = True
    reference: str = "negcon"
    select: Sequence[str] | str = DEFAULT_SELECT
    corr_threshold: float = 0.9
    blocklist: Sequence[str] | None = None
    spherize: bool = False
    spherize_method: str = "ZCA"
    spherize_epsilon: float = 1e-6
    na_cutoff: float = 0.05
    zero_mad: str = "drop"
    mad_epsilon: float = 1e-18
    protect: ProtectConfig | None = None
    controls: Any = None

    def select_ops(self) -> list[str]:
        """The selection operations as a list (a comma-separated string split, blanks dropped)."""
        ops = [o.strip() for o in self.select.split(",")] if isinstance(self.select, str) else list(self.select)
        return [o for o in ops if o]
