"""BBBC013 (FKHR-GFP translocation plate) assay figures, pinned with a tolerance.

tests/data/bbbc013_classical_wells.parquet holds the plate's 96 well profiles made by the tool (see
tests/data/README.md for the commands): classical features of GFP + DNA, well medians, mad_robustize against the 16
negcon wells, every non-texture feature (567 of 1,503, float32, to keep the file small).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stratonet.assay.config import AssayConfig
from stratonet.assay.evaluate import evaluate_assay
from stratonet.assay.readouts import ReadoutSpec

TABLE = Path(__file__).parents[1] / "data" / "bbbc013_classical_wells.parquet"
PLATE = "ExampleSBS_1049"


@pytest.fixture(scope="module")
def bbbc013():
    df = pd.read_parquet(TABLE)
    res = evaluate_assay(df, AssayConfig(readouts=[ReadoutSpec("logistic", top_k=25)],
                                         dose_column="Metadata_dose_index", compound_column="Metadata_compound",
                                         n_boot=200, with_map=False, p_method="gaussian")).metrics
    return res["plates"][PLATE]


def test_bbbc013_multivariate_readout_reaches_the_target(bbbc013):
    st = bbbc013["readouts"]["logistic[top25]"]
    assert (st["n_pos"], st["n_neg"]) == (8, 16)
    assert st["z_prime"] == pytest.approx(0.676, abs=0.03)  # target >= 0.5, out of sample, no hand selection
    assert st["z_prime"] >= 0.5
    assert st["robust_z_prime"] == pytest.approx(0.747, abs=0.03)


def test_bbbc013_best_single_feature(bbbc013):
    best = bbbc013["best_feature"]
    assert best["feature"] == "Cells_Correlation_Correlation_GFP_DNA"
    assert best["z_prime"] == pytest.approx(0.704, abs=0.01)  # target >= 0.69 (hand-made nuc/cyto ratio: ~0.69)


def test_bbbc013_dose_response(bbbc013):
    d = bbbc013["dose"]["PI3Ki"]
    assert d["status"] == "ok" and d["n_doses"] == 9 and d["n_wells"] == 72
    assert d["ec50"] == pytest.approx(4.36, abs=0.15)  # in dose-index units (1..9)
    lo, hi = d["ec50_ci95"]
    assert 4.0 < lo < d["ec50"] < hi < 4.8
    assert d["spearman_dose"] == pytest.approx(0.925, abs=0.02)
