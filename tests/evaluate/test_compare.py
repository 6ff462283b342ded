"""evaluate compare: top-N RF features of two sets, their cross-correlation, joined on metadata keys."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import report_fixtures as rf
from conftest import run_cli
from stratonet.evaluate.compare import cross_correlation, top_features


def test_cross_correlation_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 4)), rng.normal(size=(30, 3))
    b[:, 0] = 2 * a[:, 1] + 0.1 * b[:, 0]
    expected = np.corrcoef(a.T, b.T)[:4, 4:]
    np.testing.assert_allclose(cross_correlation(a, b), expected, atol=1e-12)


def test_top_features_finds_the_informative_ones():
    meta = rf.plate_metadata()
    df = rf.classical_table(meta, n=30, informative=10)
    names = [c for c in df.columns if not c.startswith("Metadata_")]
    top = top_features(df[names].to_numpy(), names, meta["Metadata_moa"].to_numpy(), n=10)
    assert list(top["rank"]) == list(range(1, 11))
    assert np.all(np.diff(top["importance"]) <= 0)
    assert len(set(top["feature"]) & set(names[:10])) >= 8


@pytest.fixture
def two_sets(tmp_path):
    meta = rf.plate_metadata()
    deep = rf.write(rf.deep_table(meta, {"high": 2.0}), tmp_path / "deep.parquet", feature_set="deep",
                    weights="untrained (seed 0)")
    # B in another row order and as CSV: the join must use the keys, not the order
    classical = rf.classical_table(meta).sample(frac=1.0, random_state=1)
    rf.write(classical, tmp_path / "classical.csv")
    return tmp_path, deep, tmp_path / "classical.csv", meta


def test_compare_cli(two_sets):
    root, a, b, meta = two_sets
    assert run_cli(["evaluate", "compare", a, b, "-o", root / "run", "--label", "Metadata_moa", "--top", "12",
                    "--name-b", "classical", "--trees", "50"]) == 0
    out = root / "run" / "evaluate" / "compare" / "deep_vs_classical"
    corr = pd.read_csv(out / "correlation.csv", index_col=0)
    assert corr.shape == (12, 12)
    assert np.nanmax(np.abs(corr.to_numpy())) <= 1.0 + 1e-9
    assert (out / "correlation.png").stat().st_size > 1000
    # recompute one cell independently from the joined tables
    da = pd.read_parquet(a)
    db = pd.read_csv(b)
    j = da.merge(db, on=["Metadata_Plate", "Metadata_Well"], suffixes=("", "_b"))
    fa, fb = corr.index[0], corr.columns[0]
    assert corr.iloc[0, 0] == pytest.approx(np.corrcoef(j[fa], j[fb])[0, 1], abs=1e-9)
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_samples"] == len(meta) and m["join_keys"] == ["Metadata_Plate", "Metadata_Well"]
    assert m["provenance"]["deep"]["weights"] == "untrained (seed 0)"


def test_compare_duplicate_keys_is_error(two_sets, capsys):
    root, a, b, _ = two_sets
    dup = pd.concat([pd.read_csv(b)] * 2)
    dup.to_csv(root / "dup.csv", index=False)
    assert run_cli(["evaluate", "compare", a, root / "dup.csv", "-o", root / "run"]) != 0
    err = capsys.readouterr().err
    assert "duplicate rows" in err and "dup.csv" in err
