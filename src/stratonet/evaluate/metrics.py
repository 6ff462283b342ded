"""Classification metrics from a confusion matrix (accuracy; macro and weighted precision, recall, F1)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

METRIC_KEYS = (
    "accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_precision", "weighted_recall", "weighted_f1",
)


def confusion(y_true: Sequence, y_pred: Sequence, labels: Sequence) -> np.ndarray:
    """Counts matrix C[i, j] = samples of true class labels[i] predicted as labels[j]."""
    labels = list(labels)
    pos = {lab: i for i, lab in enumerate(labels)}
    t = np.array([pos.get(v, -1) for v in y_true])
    p = np.array([pos.get(v, -1) for v in y_pred])
    keep = (t >= 0) & (p >= 0)
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(cm, (t[keep], p[keep]), 1)
    return cm


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support (0 where undefined, as scikit-learn's zero_division=0)."""
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    support = cm.sum(axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / denom, 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def classification_metrics(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> dict[str, float]:
    """Accuracy and macro / weighted precision, recall and F1.

    Parameters
    ----------
    y_true, y_pred : sequences of labels
    labels : sequence, optional
        Classes to average over (default: the sorted union of ``y_true`` and ``y_pred``). Macro averages weigh
        every class equally; weighted averages weigh by true support.

    Returns
    -------
    dict
        Keys of :data:`METRIC_KEYS`.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if labels is None:
        labels = np.unique(np.concatenate([y_true, y_pred]))
    cm = confusion(y_true, y_pred, labels)
    pc = per_class(cm)
    support = pc["support"]
    w = support / support.sum() if support.sum() else np.zeros_like(support)
    out = {"accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")}
    for name in ("precision", "recall", "f1"):
        out[f"macro_{name}"] = float(pc[name].mean())
        out[f"weighted_{name}"] = float((pc[name] * w).sum())
    return {k: out[k] for k in METRIC_KEYS}


def report_table(y_true: Sequence, y_pred: Sequence, labels: Sequence):
    """Classification report as a DataFrame: one row per class plus macro and weighted averages."""
    import pandas as pd

    cm = confusion(y_true, y_pred, labels)
    pc = per_class(cm)
    rows = pd.DataFrame({"class": [str(x) for x in labels], "precision": pc["precision"], "recall": pc["recall"],
                         "f1": pc["f1"], "support": pc["support"].astype(int)})
    m = classification_metrics(y_true, y_pred, labels)
    n = int(pc["support"].sum())
    extra = pd.DataFrame([
        {"class": "accuracy", "precision": m["accuracy"], "recall": m["accuracy"], "f1": m["accuracy"], "support": n},
        {"class": "macro avg", "precision": m["macro_precision"], "recall": m["macro_recall"], "f1": m["macro_f1"],
         "support": n},
        {"class": "weighted avg", "precision": m["weighted_precision"], "recall": m["weighted_recall"],
         "f1": m["weighted_f1"], "support": n},
    ])
    return pd.concat([rows, extra], ignore_index=True)
