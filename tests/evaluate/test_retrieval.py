"""Retrieval: copairs mAP (activity, consistency) and NSC / NSCB 1-NN accuracy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from stratonet.evaluate.config import RetrievalConfig
from stratonet.evaluate.retrieval import evaluate_retrieval, map_scores, nsc_accuracy, nsc_predictions
from stratonet.core.tables import write_table


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


@pytest.mark.parametrize("kind", ["activity", "consistency"])
@pytest.mark.parametrize("metric", ["cosine", "correlation", "euclidean"])
def test_blockwise_ap_equals_copairs(kind, metric):
    """The blockwise AP (bounded memory) gives copairs' own numbers, block size notwithstanding."""
    import stratonet.evaluate.retrieval as R
    from copairs.map import mean_average_precision

    df = _plate(seed=3)
    df.loc[df.index[:5], "f0"] = 0.25  # some exact ties in the features
    ap_block, map_block = map_scores(df, kind=kind, metric=metric, null_size=300, block_rows=7)
    feats = [f"f{i}" for i in range(10)]
    if kind == "activity":
        meta = pd.DataFrame({"Metadata_treatment": R.treatment_key(df, ["Metadata_pert_iname"])})
        neg = (df["Metadata_control_type"] == "negcon").to_numpy()
        meta["Metadata_reference_index"] = np.where(neg, np.arange(len(df)), -1)
        X = df[feats].to_numpy(np.float32)
        rules = (["Metadata_treatment", "Metadata_reference_index"], [], [],
                 ["Metadata_treatment", "Metadata_reference_index"])
        group = ["Metadata_treatment"]
    else:
        t = R.treatment_level(df, feats)
        meta = pd.DataFrame({"Metadata_moa": t["Metadata_moa"].astype(str),
                             "Metadata_compound_key": t["Metadata_pert_iname"].astype(str)})
        X = t[feats].to_numpy(np.float32)
        rules = (["Metadata_moa"], ["Metadata_compound_key"], [], ["Metadata_moa"])
        group = ["Metadata_moa"]
    ref = R._copairs_ap(meta, X, *rules, metric)
    ref = ref[ref["n_pos_pairs"] > 0].reset_index(drop=True)
    assert len(ref) == len(ap_block) > 0
    for col in ("average_precision", "normalized_average_precision"):
        np.testing.assert_allclose(ap_block[col], ref[col], atol=1e-5)
    np.testing.assert_array_equal(ap_block["n_total_pairs"], ref["n_total_pairs"])
    ref_map = mean_average_precision(ref, group, null_size=300, threshold=0.05, seed=0, progress_bar=False)
    np.testing.assert_allclose(map_block["mean_average_precision"], ref_map["mean_average_precision"], atol=1e-5)
    np.testing.assert_allclose(map_block["corrected_p_value"], ref_map["corrected_p_value"], atol=1e-6)


def test_blockwise_nsc_equals_dense_one_nn():
    """Blockwise 1-NN equals the argmax of the full similarity matrix."""
    from stratonet.evaluate.blockwise import nearest_allowed_blockwise
    from stratonet.evaluate.retrieval import similarity_matrix

    rng = np.random.default_rng(1)
    X = rng.normal(size=(53, 6)).astype(np.float32)
    group = rng.integers(0, 9, size=53)
    labels = group % 3
    nn, sim, same = nearest_allowed_blockwise(X, lambda r: group[r, None] != group[None, :], labels, block_rows=5)
    full = np.where(group[:, None] != group[None, :], similarity_matrix(X), -np.inf)
    np.testing.assert_array_equal(nn, full.argmax(axis=1))
    np.testing.assert_allclose(sim, full.max(axis=1), rtol=1e-6)
    assert same.all()


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
    res = evaluate_retrieval(df, RetrievalConfig(null_size=100)).metrics
    assert res["map_activity"] is None and "negative controls" in res["skipped"]["activity"]
    assert res["map_consistency"]["mean_map"] > 0.5
