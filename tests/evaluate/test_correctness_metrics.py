"""Issue 10, metrics: the majority baseline of `train treatment`, pooled vs per-fold CV in `evaluate classify`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from conftest import run_cli


def test_majority_baseline_is_the_validation_sets_share():
    from sklearn.dummy import DummyClassifier
    from sklearn.metrics import f1_score

    from stratonet.train.outputs import classification_metrics

    classes = ["DMSO", "cmpdA"]
    y_train = np.array([0] * 70 + [1] * 30)  # training majority: DMSO
    y_val = np.array([1] * 9 + [0] * 4)  # validation majority: cmpdA, share 9/13 = 0.692
    y_pred = np.zeros_like(y_val)
    m = classification_metrics(y_val, y_pred, y_train, classes)
    assert m["majority_baseline"] == 9 / 13 and m["majority_class"] == "cmpdA"
    assert m["train_majority_baseline"] == 4 / 13 and m["train_majority_class"] == "DMSO"
    # The stratified-chance macro F1 is what DummyClassifier(strategy="stratified") scores in expectation.
    rng_scores = []
    for seed in range(300):
        dummy = DummyClassifier(strategy="stratified", random_state=seed).fit(np.zeros((100, 1)), y_train)
        yv = np.repeat(y_val, 20)
        rng_scores.append(f1_score(yv, dummy.predict(np.zeros((len(yv), 1))), average="macro"))
    assert abs(m["stratified_chance_macro_f1"] - np.mean(rng_scores)) < 0.02


def _grouped_profiles(seed=0):
    """Three well-separated classes; moa2 lives on plates P0-P2 only, so some grouped folds lack it."""
    rng = np.random.default_rng(seed)
    rows, X = [], []
    for k, (n, plates) in enumerate([(60, 10), (60, 10), (30, 3)]):
        for i in range(n):
            rows.append({"Metadata_moa": f"moa{k}", "Metadata_Plate": f"P{i % plates}"})
            X.append(rng.normal(size=6) + 6.0 * (np.arange(6) == k))
    return pd.concat([pd.DataFrame(rows), pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])], axis=1)


def test_grouped_cv_reports_pooled_and_fold_mean_metrics(tmp_path, capsys):
    from stratonet.core.tables import write_table

    prof = tmp_path / "prof.parquet"
    write_table(_grouped_profiles(), prof)
    assert run_cli(["evaluate", "classify", prof, "-o", tmp_path / "run", "--classifiers", "logreg", "--cv", "5",
                    "--group-by", "Metadata_Plate", "--n-train", "90", "--permutation-features", "2"]) == 0
    err = capsys.readouterr().err
    assert "pooled" in err and "fold mean" in err and "lack a class" in err
    m = json.loads((tmp_path / "run" / "evaluate" / "classify" / "prof" / "metrics.json").read_text())
    lr = m["classifiers"]["logreg"]
    assert m["protocol"]["cv_folds_lacking_classes"]
    assert lr["cv_pooled_macro_f1"] > 0.95
    # Folds are scored over the classes they hold: an absent class no longer counts as F1 = 0.
    assert lr["cv_fold_mean_macro_f1"] > 0.9
    assert lr["cv_pooled"]["macro_f1"] == lr["cv_pooled_macro_f1"]
