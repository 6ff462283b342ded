"""Training outputs per the output contract: epoch tables, metrics, confusion matrix, classification report, plots,
and the collapse check (a model that predicts one class for nearly every sample)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.core.progress import console, get_logger
from stratonet.core.runinfo import write_json

COLLAPSE_SHARE = 0.9


def collapse_check(y_pred: np.ndarray, n_classes: int, threshold: float = COLLAPSE_SHARE) -> dict:
    """Whether predictions pile onto one class.

    Returns
    -------
    dict
        ``collapsed`` (True when one class gets at least ``threshold`` of the predictions, or only one class is
        ever predicted, while there are >= 2 classes), ``dominant_class`` (code), ``dominant_share``,
        ``n_predicted_classes``.
    """
    y_pred = np.asarray(y_pred)
    if len(y_pred) == 0 or n_classes < 2:
        return {"collapsed": False, "dominant_class": None, "dominant_share": float("nan"), "n_predicted_classes": 0}
    counts = np.bincount(y_pred, minlength=n_classes)
    top = int(np.argmax(counts))
    share = float(counts[top] / counts.sum())
    n_pred = int(np.count_nonzero(counts))
    return {"collapsed": bool(share >= threshold or n_pred == 1), "dominant_class": top, "dominant_share": share,
            "n_predicted_classes": n_pred}


def stratified_chance_macro_f1(y_true: np.ndarray, y_train: np.ndarray, n_classes: int) -> float:
    """Expected macro F1 of guessing classes at random with the training set's class frequencies.

    This is scikit-learn's ``DummyClassifier(strategy="stratified")`` in expectation: a guess independent of
    the truth with class probabilities q (training frequencies) against true validation shares p gives class k
    precision p_k and recall q_k, so F1_k = 2 p_k q_k / (p_k + q_k). Averaged over the classes present in the
    validation truth, as :func:`classification_metrics` averages the model's F1.
    """
    yt = np.asarray(y_true, int)
    if yt.size == 0:
        return float("nan")
    p = np.bincount(yt, minlength=n_classes) / yt.size
    tr = np.bincount(np.asarray(y_train, int), minlength=n_classes).astype(float)
    q = tr / tr.sum() if tr.sum() else np.full(n_classes, 1.0 / n_classes)
    present = p > 0
    f1 = np.where(p + q > 0, 2 * p * q / np.maximum(p + q, 1e-300), 0.0)
    return float(f1[present].mean())


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, y_train: np.ndarray, classes: Sequence[str]) -> dict:
    """Accuracy and macro F1 of a model, beside the baselines it must beat on the same validation set.

    - ``majority_baseline``: the validation set's majority share, i.e. the accuracy of always answering the
      class most frequent in validation (``majority_class``), and ``majority_baseline_macro_f1`` of that answer;
    - ``train_majority_baseline``: the accuracy on validation of always answering the *training* set's most
      frequent class (``train_majority_class``), which is lower when the two splits differ;
    - ``stratified_chance_macro_f1``: see :func:`stratified_chance_macro_f1`.

    Macro F1 averages over the classes present in the validation truth (a class absent from validation has no
    F1 to average), the same set for model and baselines.
    """
    from sklearn.metrics import accuracy_score, f1_score

    yt = np.asarray(y_true)
    labels = sorted(np.unique(yt).tolist())
    val_counts = np.bincount(yt.astype(int), minlength=len(classes))
    majority = int(val_counts.argmax())
    train_majority = int(np.bincount(np.asarray(y_train, int), minlength=len(classes)).argmax())
    y_major = np.full_like(yt, majority)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "majority_baseline": float(val_counts[majority] / max(len(yt), 1)),
        "majority_baseline_macro_f1": float(f1_score(y_true, y_major, labels=labels, average="macro", zero_division=0)),
        "majority_class": classes[majority],
        "train_majority_baseline": float(accuracy_score(y_true, np.full_like(yt, train_majority))),
        "train_majority_class": classes[train_majority],
        "stratified_chance_macro_f1": stratified_chance_macro_f1(yt, y_train, len(classes)),
        "n_val": int(len(y_true)),
    }


def write_evaluation(out: Path, y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str], title: str) -> None:
    """``confusion.csv`` (true class rows, predicted columns), ``confusion.png`` and ``classification_report.csv``."""
    from sklearn.metrics import classification_report, confusion_matrix

    labels = list(range(len(classes)))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    cm_df = pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=list(classes))
    cm_df.to_csv(out / "confusion.csv")
    rep = classification_report(y_true, y_pred, labels=labels, target_names=list(classes), output_dict=True,
                                zero_division=0)
    rows = []
    for name, vals in rep.items():
        if isinstance(vals, dict):
            rows.append({"class": name, **vals})
        else:  # 'accuracy' is a scalar
            rows.append({"class": name, "precision": np.nan, "recall": np.nan, "f1-score": vals,
                         "support": len(y_true)})
    pd.DataFrame(rows).to_csv(out / "classification_report.csv", index=False)
    plot_confusion(cm, classes, out / "confusion.png", title)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * k + 2), max(3.5, 0.5 * k + 1.5)))
    rows = cm.sum(1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(epochs: pd.DataFrame, path: Path, title: str, acc_cols: tuple[str, str]) -> None:
    """Loss and accuracy per epoch, train and val."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    a1.plot(epochs["epoch"], epochs["train_loss"], "o-", label="train")
    a1.plot(epochs["epoch"], epochs["val_loss"], "o-", label="val")
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.legend()
    tr, va = acc_cols
    a2.plot(epochs["epoch"], epochs[tr], "o-", label="train")
    a2.plot(epochs["epoch"], epochs[va], "o-", label="val")
    if "val_top5" in epochs:
        a2.plot(epochs["epoch"], epochs["val_top5"], "--", label="val top-5")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.set_ylim(0, 1.02)
    a2.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ssl_curves(history: list[dict], path: Path, title: str) -> None:
    """Self-supervised training: the loss per step (and its 50-step mean) beside the learning rate and the teacher
    momentum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = pd.DataFrame(history)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    a1.plot(h["step"], h["loss"], lw=0.6, alpha=0.5, label="loss")
    a1.plot(h["step"], h["loss"].rolling(50, min_periods=1).mean(), lw=1.5, label="50-step mean")
    a1.set_xlabel("step")
    a1.set_ylabel("DINO loss")
    a1.legend()
    a2.plot(h["step"], h["lr"], label="learning rate")
    a2.set_xlabel("step")
    a2.set_ylabel("learning rate")
    twin = a2.twinx()
    twin.plot(h["step"], h["momentum"], color="tab:orange", label="teacher momentum")
    twin.set_ylabel("teacher momentum")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_epochs(out: Path, rows: list[dict]) -> pd.DataFrame:
    """``epochs.csv`` and ``epochs.json`` from one dict per epoch."""
    df = pd.DataFrame(rows)
    df.to_csv(out / "epochs.csv", index=False)
    write_json(rows, out / "epochs.json")
    return df


def warn_collapse(check: dict, classes: Sequence[str], model: str) -> None:
    """Print and log a loud warning when :func:`collapse_check` says collapsed."""
    if not check["collapsed"]:
        return
    msg = (f"COLLAPSED: {model} predicts '{classes[check['dominant_class']]}' for "
           f"{check['dominant_share']:.0%} of validation samples ({check['n_predicted_classes']} class(es) predicted); "
           "its accuracy mostly reflects class imbalance")
    console.print(f"[bold red]WARNING: {msg}[/]")
    get_logger().warning(msg)
