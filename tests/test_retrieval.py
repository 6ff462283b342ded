"""Retrieval: copairs mAP (activity, consistency) and NSC / NSCB 1-NN accuracy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from stratonet.evaluate.retrieval import evaluate_retrieval, map_scores, nsc_accuracy, nsc_predictions
from stratonet.tables import write_table


def _plate(seed=0, active=True):
    """4 MoAs x 2 compounds x 3 replicates over 3 batches, plus 12 DMSO wells."""
    rng = np.random.default_rng(seed)
    rows, X = [], []
    centers = rng.normal(size=(4, 10)) * 3
    for m in range(4):
        for c in range(2):
            for r in range(3):
                rows.append({"Metadata_Plate": f"P{r}", "Metadata_Batch": f"B{(m + c) % 3}", "Metadata_moa": f"moa{m}",
                             "Metadata_pert_iname": f"cpd{m}{c}", "Metadata_control_type": "trt"})
                X.append((centers[m] if active else 0) + rng.normal(size=10))
    for r in range(12):
        rows.append({"Metadata_Plate": f"P{r % 3}", "Metadata_Batch": f"B{r % 3}", "Metadata_moa": "control",
                     "Metadata_pert_iname": "DMSO", "Metadata_control_type": "negcon"})
        X.append(rng.normal(size=10))
    return pd.concat([pd.DataFrame(rows), pd.DataFrame(np.array(X), columns=[f"f{i}" for i in range(10)])], axis=1)


def test_map_activity_high_for_distinct_treatments_and_low_for_noise():
    _, good = map_scores(_plate(), kind="activity", null_size=500)
    _, noise = map_scores(_plate(active=False), kind="activity", null_size=500)
    assert len(good) == 8 and good["mean_average_precision"].mean() > 0.9
    assert good["below_corrected_p"].mean() > noise["below_corrected_p"].mean()
    assert noise["mean_average_precision"].mean() < 0.6


def test_map_dense_path_matches_copairs_native(monkeypatch):
    import stratonet.evaluate.retrieval as R

    ap_dense, _ = map_scores(_plate(), kind="consistency", null_size=200)
    monkeypatch.setattr(R, "DENSE_LIMIT", 0)
    ap_native, _ = map_scores(_plate(), kind="consistency", null_size=200)
    np.testing.assert_allclose(ap_dense["average_precision"], ap_native["average_precision"], atol=1e-5)


def test_nsc_excludes_same_compound_and_nscb_same_batch():
    df = _plate()
    pred = nsc_predictions(df, batch="Metadata_Batch")
    assert len(pred) == 8  # treatment level, DMSO dropped
    comp = pred["Metadata_pert_iname"].to_numpy()
    assert (comp[pred["nsc_neighbor"]] != comp).all()
    batches = pred["Metadata_batches"].to_numpy()
    ok = pred["nscb_neighbor"] >= 0
    assert all(set(batches[i].split("|")).isdisjoint(batches[j].split("|"))
               for i, j in zip(np.where(ok)[0], pred.loc[ok, "nscb_neighbor"]))
    assert nsc_accuracy(df) == 1.0


def test_evaluate_retrieval_cli_writes_contract_files(tmp_path):
    src = tmp_path / "pixel.parquet"
    write_table(_plate(), src, provenance={"feature_set": "pixel"})
    assert run_cli(["evaluate", "retrieval", src, "-o", tmp_path / "run", "--null-size", "200"]) == 0
    out = tmp_path / "run" / "evaluate" / "retrieval" / "pixel"
    m = json.loads((out / "metrics.json").read_text())
    assert m["feature_set"] == "pixel" and m["provenance"]["feature_set"] == "pixel"
    assert {"mean_map", "fraction_retrieved"} <= set(m["map_activity"]) and m["nsc_accuracy"] == 1.0
    for name in ("map_activity.csv", "map_consistency.csv", "nsc_predictions.csv", "retrieval.config.yaml"):
        assert (out / name).exists()


def test_retrieval_without_controls_is_reported(tmp_path):
    df = _plate()
    df = df[df.Metadata_control_type == "trt"]
    res = evaluate_retrieval(df, null_size=100)
    assert res["map_activity"] is None and "negative controls" in res["skipped"]["activity"]
    assert res["map_consistency"]["mean_map"] > 0.5
