"""A small synthetic assay plate for the demo's assay stage: negcon, a positive control and one compound's full
dose series, so that Z', a 4PL dose-response curve and hit calling have something known to recover.

The compound's phenotype strength follows its Hill curve (:meth:`stratonet.synth.compounds.Compound.strength`), so
the true EC50 and Hill coefficient are known; the positive control is the same compound at a saturating dose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.synth.compounds import CONTROL_ID, CONTROL_MOA, CONTROL_NAME, compound_by_name
from stratonet.synth.layout import CHANNELS, PHENIX_CHANNELS, phenix_name
from stratonet.synth.render import SynthParams, render_site

#: The demo's dose series (uM): 8 log-spaced doses around the synthetic compounds' EC50 of 0.3 uM.
ASSAY_DOSES_UM = tuple(float(d) for d in np.logspace(-2, 1, 8))


def make_assay_plate(out: str | Path, compound: str = "thapsigargin", doses=ASSAY_DOSES_UM, replicates: int = 3,
                     n_negcon: int = 12, n_poscon: int = 6, poscon_dose: float = 30.0, size: int = 256,
                     seed: int = 0, plate: str = "DEMO-ASSAY") -> Path:
    """Render the plate (one site per well) into ``out/Images`` and write ``out/load_data.csv``.

    Wells fill a 96-well grid row by row in a seeded random order. Metadata: ``Metadata_control_type``
    (negcon / poscon / trt), ``Metadata_pert_iname``, ``Metadata_concentration`` (uM), ``Metadata_moa``, and the
    compound's true ``Metadata_true_ec50_um`` / ``Metadata_true_hill``.

    Returns
    -------
    Path of ``load_data.csv``.
    """
    import tifffile

    comp = compound_by_name(compound)
    if comp is None:
        from stratonet.core.errors import ConfigError

        raise ConfigError(f"unknown synthetic compound '{compound}'")
    wells = ([(CONTROL_NAME, 0.0, "negcon")] * n_negcon + [(comp.pert_iname, poscon_dose, "poscon")] * n_poscon
             + [(comp.pert_iname, float(d), "trt") for d in doses for _ in range(replicates)])
    if len(wells) > 96:
        from stratonet.core.errors import ConfigError

        raise ConfigError(f"assay plate: {len(wells)} wells do not fit a 96-well plate")
    order = np.random.default_rng(seed).permutation(len(wells))
    params = SynthParams(seed=seed, plate=plate, size=size, plate_format=96)
    out = Path(out)
    images = out / "Images"
    images.mkdir(parents=True, exist_ok=True)
    chan_no = {name: no for no, name in PHENIX_CHANNELS.items()}
    rows = []
    for pos, k in enumerate(order):
        name, dose, ctype = wells[k]
        r, c = pos // 12 + 1, pos % 12 + 1
        well = f"{chr(64 + r)}{c:02d}"
        image = render_site(params, well, 1, treatment=None if ctype == "negcon" else name, dose=dose)
        row = {"Metadata_Plate": plate, "Metadata_Well": well, "Metadata_Site": "1",
               "Metadata_control_type": ctype, "Metadata_pert_iname": name,
               "Metadata_broad_sample": CONTROL_ID if ctype == "negcon" else comp.broad_sample,
               "Metadata_moa": CONTROL_MOA if ctype == "negcon" else comp.moa, "Metadata_concentration": dose,
               "Metadata_true_ec50_um": comp.ec50_um, "Metadata_true_hill": comp.hill}
        for i, ch in enumerate(CHANNELS):
            fname = phenix_name(r, c, 1, chan_no[ch])
            tifffile.imwrite(images / fname, image[i], photometric="minisblack")
            row[f"FileName_Orig{ch}"], row[f"PathName_Orig{ch}"] = fname, str(images.resolve())
        rows.append(row)
    path = out / "load_data.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
