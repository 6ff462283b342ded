"""Synthetic Cell Painting plates with known, dose-dependent phenotypes.

>>> from stratonet.synth import plan_plate, render_site
>>> from stratonet.runtime import make_plate      # writes a plate to a folder, resumable
>>> spec = plan_plate(wells=24, sites=2, seed=0, size=256)
>>> image, truth = render_site(spec, "A01", 1, masks=True)   # (5, 256, 256) uint16, ch1..ch5
"""

from stratonet.synth.compounds import COMPOUNDS, DOSES_UM, MOAS, Compound, Effects, effects_for
from stratonet.synth.layout import CHANNELS, PHENIX_CHANNELS, WellSpec, make_platemap, phenix_name
from stratonet.synth.plate import PlateSpec, check_out, plan_plate
from stratonet.synth.render import SiteTruth, SynthParams, illumination, plate_effect, render_site

__all__ = [
    "CHANNELS", "COMPOUNDS", "DOSES_UM", "MOAS", "PHENIX_CHANNELS", "Compound", "Effects", "PlateSpec", "SiteTruth",
    "SynthParams", "WellSpec", "check_out", "effects_for", "illumination", "make_platemap",
    "phenix_name", "plan_plate", "plate_effect", "render_site",
]
