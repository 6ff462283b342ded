"""Classifier protocol: balanced sampling without leakage, group-aware splits, metrics vs scikit-learn, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from conftest import run_cli
from stratonet.evaluate.classify import evaluate_classifiers, write_classify
from stratonet.evaluate.config import ClassifyConfig
from stratonet.evaluate.metrics import classification_metrics
from stratonet.evaluate.sampling import balanced_sample, balanced_subset, kfold_indices, train_test_split_indices
from stratonet.core.tables import write_table


def _profiles(n_per=(120, 60, 12), feats=8, seed=0):
    rng = np.random.default_rng(seed)
    rows, X = [], []
    for k, n in enumerate(n_per):
        for i in range(n):
            rows.append({"Metadata_moa": f"moa{k}", "Metadata_Plate": f"P{i % 6}", "Metadata_pert_iname": f"c{k}_{i % 3}"})
            X.append(rng.normal(size=feats) + 4.0 * (np.arange(feats) == k))
    return pd.concat([pd.DataFrame(rows), pd.DataFrame(X, columns=[f"f{i}" for i in range(feats)])], axis=1)


def test_balanced_sample_uses_only_training_rows_and_equal_counts():
    y = np.array(["a"] * 100 + ["b"] * 40 + ["c"] * 5)
    train, test = train_test_split_indices(y, 0.2, seed=1)
    assert not set(train) & set(test)
    sample = balanced_sample(y, train, n_total=90, seed=1)
    assert set(sample) <= set(train)
    labels, counts = np.unique(y[sample], return_counts=True)
    assert list(labels) == ["a", "b", "c"] and (counts == 30).all()
    # large classes without replacement, the small class with replacement (it has only 4 training rows)
    assert len(set(sample[y[sample] == "a"])) == 30 and len(set(sample[y[sample] == "c"])) == (y[train] == "c").sum()


def test_balanced_test_subset_is_balanced_and_inside_test():
    y = np.array(["a"] * 50 + ["b"] * 10)
    idx = np.arange(60)
    sub = balanced_subset(y, idx, seed=0)
    assert np.unique(y[sub], return_counts=True)[1].tolist() == [10, 10] and len(set(sub)) == 20


def test_group_aware_split_and_folds_keep_groups_whole():
    df = _profiles()
    g = df["Metadata_Plate"].to_numpy()
    train, test = train_test_split_indices(df["Metadata_moa"], 0.3, groups=g, seed=0)
    assert not set(g[train]) & set(g[test])
    for tr, te in kfold_indices(df["Metadata_moa"], 3, groups=g, seed=0):
        assert not set(g[tr]) & set(g[te])


def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(3)
    y = rng.choice(list("abcd"), size=200, p=[0.5, 0.3, 0.15, 0.05])
    pred = np.where(rng.random(200) < 0.6, y, rng.choice(list("abcde"), size=200))
    labels = sorted(set(y) | set(pred))
    ours = classification_metrics(y, pred, labels)
    assert ours["accuracy"] == pytest.approx(accuracy_score(y, pred))
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y, pred, labels=labels, average=avg, zero_division=0)
        assert ours[f"{avg}_precision"] == pytest.approx(p)
        assert ours[f"{avg}_recall"] == pytest.approx(r)
        assert ours[f"{avg}_f1"] == pytest.approx(f)


def test_evaluate_classifiers_protocol_and_files(tmp_path):
    df = _profiles()
    cfg = ClassifyConfig(classifiers=["logreg", "rf"], n_train=150, cv=3, rf_trees=10, permutation_features=3,
                         permutation_repeats=2)
    found = evaluate_classifiers(df, cfg, name="toy", provenance={"weights": "untrained (seed 0)"})
    write_classify(found, tmp_path)
    res = found.metrics
    assert res["protocol"]["n_train_balanced"] == 150
    assert res["protocol"]["n_test"] == int(np.ceil(0.2 * len(df)))  # sklearn rounds the test share up
    for clf in ("logreg", "rf"):
        m = res["classifiers"][clf]
        assert m["accuracy"] > 0.7  # separable toy classes: above the 0.63 majority baseline
        assert set(m["cv"]["accuracy"]) == {"mean", "sd"} and "balanced_test" in m
        cm = pd.read_csv(tmp_path / f"confusion_{clf}.csv", index_col=0)
        assert cm.to_numpy().sum() == res["protocol"]["n_test"]
        assert (tmp_path / f"confusion_{clf}.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["feature_set"] == "toy" and saved["provenance"]["weights"] == "untrained (seed 0)"
    perm = pd.read_csv(tmp_path / "importance_permutation.csv")
    imp = pd.read_csv(tmp_path / "importance_rf_impurity.csv")
    assert len(perm) == 3 and len(imp) == 8 and imp["importance"].sum() == pytest.approx(1.0)


def test_exclude_class_and_group_by_cli(tmp_path):
    src = tmp_path / "classical.parquet"
    write_table(_profiles(), src, provenance={"feature_set": "classical"})
    code = run_cli(["evaluate", "classify", src, "-o", tmp_path / "run", "--classifiers", "logreg,svm", "--cv", "2",
                    "--n-train", "60", "--group-by", "Metadata_Plate", "--exclude-class", "moa2",
                    "--permutation-features", "2", "--rf-trees", "5"])
    assert code == 0
    out = tmp_path / "run" / "evaluate" / "classify" / "classical"
    m = json.loads((out / "metrics.json").read_text())
    assert m["classes"] == ["moa0", "moa1"] and m["protocol"]["group_by"] == "Metadata_Plate"
    assert (out / "classify.config.yaml").exists()


def test_unknown_label_is_one_line_error(tmp_path, capsys):
    src = tmp_path / "p.parquet"
    write_table(_profiles(), src)
    assert run_cli(["evaluate", "classify", src, "-o", tmp_path, "--label", "Metadata_nope"]) != 0
    assert "Metadata_nope" in capsys.readouterr().err
