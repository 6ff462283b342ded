"""Agreement with CellProfiler on the two real JUMP FOVs, pinned to the figures in benchmarks/RESULTS.md."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Recorded with benchmarks/quality/cp_agreement.py (see RESULTS.md, section cp-agreement).
RECORDED = {
    "JUMP BR00117006 A01 (3 ch)": {"Nuclei": (189, 188, 0.912), "Cells": (189, 188, 0.875)},
    "pediatric BR00143976 C03 s3 (5 ch)": {"Nuclei": (38, 37, 0.933), "Cells": (38, 29, 0.806)},
}
F1_TOL = 0.02


def _bench():
    spec = importlib.util.spec_from_file_location("cp_agreement", ROOT / "benchmarks" / "quality" / "cp_agreement.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("fov", list(RECORDED))
def test_agreement_with_cellprofiler(fov, jump_fov, pediatric_fov):
    bench = _bench()
    res = bench.run_fov(bench.FOVS[fov], jump_fov.parent)
    for comp, (n_ours, n_cp, f1) in RECORDED[fov].items():
        seg = res["segmentation"][comp]
        assert seg["n_truth"] == n_cp  # CellProfiler's outlines filled to the same number of objects
        assert abs(seg["n_pred"] - n_ours) <= max(2, 0.02 * n_ours)
        assert seg["f1"] >= f1 - F1_TOL, (comp, seg["f1"])
    nuc = res["segmentation"]["Nuclei"]
    assert nuc["f1"] >= 0.85 and abs(nuc["count_ratio"] - 1) <= 0.10  # the targets
    v = res["values"].set_index("feature")
    assert res["n_located"] == 5
    # Shape measured on CellProfiler's own objects agrees to < 1 % (median over the 5 cells).
    for f in ["Nuclei_AreaShape_Area", "Nuclei_AreaShape_Perimeter", "Cells_AreaShape_Area",
              "Cells_AreaShape_MajorAxisLength", "Nuclei_AreaShape_Eccentricity"]:
        assert v.loc[f, "median_rel_error"] < 0.01, f
    # Intensities differ by CellProfiler's illumination correction, a smooth per-position factor: values are
    # off by up to ~50 % but rank the cells alike.
    assert v.loc["Nuclei_Intensity_IntegratedIntensity_DNA", "pearson_r"] > 0.95
    assert v.loc["Nuclei_Intensity_MeanIntensity_DNA", "median_rel_error"] < 0.5
