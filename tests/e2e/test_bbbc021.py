"""BBBC021 real-data acceptance: NSC on the processed profiles vs a plain numpy computation, and the pinned
figures of the tool's own chain from the raw per-well means (see benchmarks/quality/bbbc021.py and RESULTS.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path[:0] = [str(Path(__file__).resolve().parents[2] / "benchmarks" / _d) for _d in ("speed", "quality")]

import bbbc021 as bbbc021_mod  # noqa: E402  (benchmarks/quality/bbbc021.py; the fixture is also named bbbc021)

from stratonet.evaluate.retrieval import nsc_accuracy  # noqa: E402


def _numpy_nsc(df: pd.DataFrame) -> float:
    feats = [c for c in df.columns if not c.startswith("Metadata_")]
    trt = df[df["Metadata_Compound"] != "DMSO"]
    prof = trt.groupby(["Metadata_Compound", "Metadata_Concentration"])
    X = prof[feats].median().to_numpy()
    moa = prof["Metadata_moa"].first().to_numpy()
    cpd = np.array([k[0] for k in prof[feats].median().index])
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    sim = Xn @ Xn.T
    sim[cpd[:, None] == cpd[None, :]] = -np.inf
    return float(np.mean(moa[sim.argmax(axis=1)] == moa))


def test_morpheus_nsc_matches_independent_numpy(bbbc021: Path):
    df = bbbc021_mod.load_morpheus(bbbc021)
    ours = nsc_accuracy(df, label="Metadata_moa", treatment=["Metadata_Compound", "Metadata_Concentration"])
    ref = _numpy_nsc(df.drop(columns=["Metadata_Batch"]))
    assert abs(ours - ref) <= 0.01
    assert 0.88 <= ours <= 0.95  # published CellProfiler-profile range 0.90-0.94


def test_raw_chain_best_config_pinned(bbbc021: Path):
    raw = bbbc021_mod.load_raw(bbbc021)
    assert raw.shape[0] == 632 and raw["Metadata_moa"].notna().all()
    prof = bbbc021_mod.profile_raw(raw, "standardize",
                                   "variance_threshold,correlation_threshold,drop_na_columns,drop_outliers",
                                   spherize=10.0, by_plate=False)
    s = bbbc021_mod.scores(prof)
    base = bbbc021_mod.scores(bbbc021_mod.load_morpheus(bbbc021))
    assert s["nsc"] == pytest.approx(0.9417, abs=0.01)
    # 0.7609 while the 54 position and object-number columns (Location_*, AreaShape_Center_*, Neighbors_*Closest
    # ObjectNumber*, ...) were profiled as features; they are identifiers, never features (issue 27, D9)
    assert s["nscb"] == pytest.approx(0.7717, abs=0.01)
    assert s["nsc"] >= base["nsc"]


def test_raw_chain_per_plate_pinned(bbbc021: Path):
    """Per-plate normalisation against the 6 DMSO wells of each plate: pinned, and below the pooled chain."""
    raw = bbbc021_mod.load_raw(bbbc021)
    prof = bbbc021_mod.profile_raw(raw, "mad_robustize",
                                   "variance_threshold,correlation_threshold,drop_na_columns,drop_outliers",
                                   spherize=None, by_plate=True)
    s = bbbc021_mod.scores(prof)
    assert s["nsc"] == pytest.approx(0.7767, abs=0.01)
    assert s["nscb"] == pytest.approx(0.7826, abs=0.01)



