"""Ground truth on a synthetic plate: the nuclear-size compound raises Nuclei_AreaShape_Area with dose."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli


def test_nuclear_size_compound_raises_nuclei_area_with_dose(tmp_path):
    # 37 wells: 18 treated = 6 compounds x 3 doses, the rest DMSO; small sites keep this fast.
    plate = tmp_path / "plate"
    assert run_cli(["synth", plate, "--wells", 37, "--sites", 1, "--size", 256, "--seed", 1]) == 0
    load_data = next(plate.rglob("load_data.csv"))
    idx = tmp_path / "index.parquet"
    assert run_cli(["index", load_data, "-o", idx]) == 0
    out = tmp_path / "classical"
    assert run_cli(["extract", "classical", idx, "-o", out, "--features", "areashape", "--workers", "2"]) == 0
    wells = pd.read_parquet(out / "well.parquet")
    size = wells[wells["Metadata_moa"] == "nuclear_size"]
    assert not size.empty, f"no nuclear-size compound among {sorted(wells['Metadata_moa'].unique())}"
    ctrl = wells.loc[wells["Metadata_control_type"] == "negcon", "Nuclei_AreaShape_Area"].median()
    by_dose = size.groupby("Metadata_concentration")["Nuclei_AreaShape_Area"].median().sort_index()
    curve = np.r_[ctrl, by_dose.to_numpy()]
    assert len(by_dose) == 3
    assert np.all(np.diff(curve) > 0), f"control and doses {list(by_dose.index)} -> areas {curve.round(1)}"
