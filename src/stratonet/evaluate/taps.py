"""Tap selection (thesis Appendix D): how well each tap of a network separates positive from negative controls.

A deep feature table carries columns ``<Channel>_<tap>_<i>`` (e.g. ``DNA_low_0012``, ``AGP_high_0511``). For each
tap, all channels' features of that tap are scored by

* cross-validated accuracy of a standardised logistic regression (stratified k-fold), and
* mean average precision (mAP, copairs via :func:`stratonet.evaluate.retrieval.map_scores`, cosine): with the
  control column, the phenotypic activity of each treatment's replicates against the negative controls (or, when
  no treatment has a replicate, of the scored class as a whole); with
  another label, the consistency of treatments of the same class.

By default the classes are ``Metadata_control_type`` poscon vs negcon; a plate without positive controls falls back
to all treated profiles vs negcon; with ``label`` set to another column every class of that column is used.
Output: ``<run>/evaluate/taps/<model>/tap_selection.csv`` (tap, accuracy, mAP, ...), ``tap_selection.png``,
``metrics.json``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.errors import StratoNetError
from stratonet.evaluate._common import (
    clean_matrix, load_profiles, require_column, safe_name, standardize, untrained_note,
)
from stratonet.core.runinfo import write_json

TAP_COLUMN = re.compile(r"^(?P<channel>[A-Za-z0-9]+)_(?P<tap>[A-Za-z0-9_]+?)_(?P<index>\d+)$")
CONTROL_COLUMN = "Metadata_control_type"
CLASS_COLUMN = "Metadata_tap_class"  # the classes being scored, added to the metadata handed to copairs


def taps_of(columns: list[str]) -> dict[str, list[str]]:
    """Group deep-feature columns ``<Channel>_<tap>_<i>`` by tap, in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for c in columns:
        m = TAP_COLUMN.match(str(c))
        if m:
            groups.setdefault(m.group("tap"), []).append(c)
    return groups


def activity_grouping(meta: pd.DataFrame) -> list[str]:
    """Columns that group profiles for activity mAP: the treatment (compound + dose) when some treated profile has
    a replicate, else the scored class (e.g. all positive controls together)."""
    from stratonet.evaluate.retrieval import treatment_key
    from stratonet.profile.controls import negcon_mask, treatment_columns

    try:
        tcols = treatment_columns(meta)
    except StratoNetError:
        return [CLASS_COLUMN]
    treated = treatment_key(meta, tcols)[~negcon_mask(meta, required=False)]
    return tcols if treated.duplicated().any() else [CLASS_COLUMN]


def tap_map(meta: pd.DataFrame, x: np.ndarray, kind: str, label: str, null_size: int = 2000,
            seed: int = 0, grouping: list[str] | None = None) -> tuple[float, float]:
    """mAP and fraction retrieved (BH-corrected p < 0.05) of one tap's features, with copairs.

    ``kind="activity"``: replicates of each group (``grouping`` columns, see :func:`activity_grouping`) retrieve
    each other against the negative controls (phenotypic activity);
    ``kind="consistency"``: treatments of the same ``label`` class against other classes.
    """
    from stratonet.evaluate.retrieval import map_scores

    names = [f"f{i}" for i in range(x.shape[1])]
    df = pd.concat([meta.reset_index(drop=True), pd.DataFrame(x, columns=names)], axis=1)
    _, m = map_scores(df, names, kind=kind, label=label, treatment=grouping if kind == "activity" else None,
                      null_size=null_size, seed=seed)
    return float(m["mean_average_precision"].mean()), float(m["below_corrected_p"].mean())


def cv_accuracy(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> tuple[float, float, int]:
    """Stratified k-fold accuracy (mean, sd, folds used) of a standardised logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = int(pd.Series(y).value_counts().min())
    k = min(folds, smallest)
    if k < 2:
        raise StratoNetError(f"a class has {smallest} profile(s); cross-validation needs at least 2 per class")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    scores = cross_val_score(model, x, y, cv=cv, scoring="accuracy")
    return float(scores.mean()), float(scores.std(ddof=1) if len(scores) > 1 else 0.0), k


def select_classes(df: pd.DataFrame, label: str, positive: str, negative: str) -> tuple[pd.DataFrame, str]:
    """The rows and class description to score.

    With the control column: positive vs negative controls, or (no positives) all others vs negative controls.
    With any other column: all rows, every class.
    """
    values = df[label].astype(str)
    if label != CONTROL_COLUMN:
        return df.assign(_class=values), f"all classes of {label}"
    if not (values == negative).any():
        raise StratoNetError(f"no '{negative}' rows in {label}; pass --negative or another --label")
    if (values == positive).any():
        keep = values.isin([positive, negative])
        return df[keep].assign(_class=values[keep]), f"{positive} vs {negative}"
    cls = np.where(values == negative, negative, "not " + negative)
    return df.assign(_class=cls), f"all non-{negative} vs {negative} (no '{positive}' rows)"


def plot_taps(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Grouped bars of accuracy and mAP per tap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(table)
    pos = np.arange(n)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * n + 2), 3.8), dpi=110)
    ax.bar(pos - 0.2, table["accuracy"], 0.4, yerr=table["accuracy_sd"], capsize=3, color="#4c72b0",
           label="CV accuracy")
    ax.bar(pos + 0.2, table["mAP"], 0.4, color="#55a868", label="mAP")
    ax.set_xticks(pos)
    ax.set_xticklabels(table["tap"])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("tap")
    ax.set_ylabel("score")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def score_taps(df: pd.DataFrame, features: list[str], label: str = CONTROL_COLUMN, positive: str = "poscon",
               negative: str = "negcon", folds: int = 5, seed: int = 0,
               null_size: int = 2000) -> tuple[pd.DataFrame, str]:
    """Accuracy and mAP of every tap in a deep feature table.

    Returns
    -------
    (table, comparison) where table has columns tap, accuracy, accuracy_sd, mAP, fraction_retrieved, n_features,
    channels,
    n_profiles, folds; and comparison describes the classes scored.
    """
    groups = taps_of(features)
    if not groups:
        raise StratoNetError("no deep-feature columns named <Channel>_<tap>_<i> (e.g. DNA_high_0001)")
    sub, comparison = select_classes(df, label, positive, negative)
    y = sub["_class"].astype(str).to_numpy()
    if len(np.unique(y)) < 2:
        raise StratoNetError(f"only one class ({y[0] if len(y) else 'none'}) to separate in {label}")
    kind = "activity" if label == CONTROL_COLUMN else "consistency"
    meta = sub[[c for c in sub.columns if str(c).startswith("Metadata_")]].assign(**{CLASS_COLUMN: y})
    grouping = activity_grouping(meta) if kind == "activity" else None
    rows = []
    for tap, cols in groups.items():
        x, used = clean_matrix(sub, cols)
        if not used:
            rows.append({"tap": tap, "accuracy": np.nan, "accuracy_sd": np.nan, "mAP": np.nan,
                         "fraction_retrieved": np.nan, "n_features": 0, "channels": "", "n_profiles": len(sub), "folds": 0})
            continue
        acc, sd, k = cv_accuracy(x, y, folds=folds, seed=seed)
        ap, retrieved = tap_map(meta, standardize(x), kind, label, null_size=null_size, seed=seed,
                                grouping=grouping)
        channels = sorted({TAP_COLUMN.match(c).group("channel") for c in used})
        rows.append({"tap": tap, "accuracy": acc, "accuracy_sd": sd, "mAP": ap, "fraction_retrieved": retrieved,
                     "n_features": len(used), "channels": "|".join(channels), "n_profiles": len(sub), "folds": k,
                     "map_grouping": "+".join(grouping) if grouping else label})
    return pd.DataFrame(rows), comparison


def run_taps(features_path: str | Path, run_dir: str | Path, model: str | None = None,
             label: str = CONTROL_COLUMN, positive: str = "poscon", negative: str = "negcon", folds: int = 5,
             seed: int = 0, null_size: int = 2000) -> Path:
    """Score every tap of a deep feature table and write ``<run>/evaluate/taps/<model>/``.

    Returns
    -------
    Path of the output folder.
    """
    df, feats, prov = load_profiles(features_path)
    require_column(df, label, features_path)
    model = model or str(prov.get("model") or Path(features_path).name.split(".")[0])
    table, comparison = score_taps(df, feats, label=label, positive=positive, negative=negative, folds=folds,
                                   seed=seed, null_size=null_size)
    out = Path(run_dir) / "evaluate" / "taps" / safe_name(model)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "tap_selection.csv", index=False)
    plot_taps(table, out / "tap_selection.png", f"Tap selection, {model}: {comparison}{untrained_note(prov)}")
    best = table.sort_values(["mAP", "accuracy"], ascending=False).iloc[0]
    write_json({
        "feature_set": prov.get("feature_set", "deep"),
        "model": model,
        "provenance": prov,
        "label": label,
        "comparison": comparison,
        "classifier": "logistic regression (standardised), stratified k-fold",
        "map_method": ("copairs mAP (stratonet.evaluate.retrieval.map_scores, cosine): "
                       + ("phenotypic activity of each treatment vs negative controls" if label == CONTROL_COLUMN
                          else f"consistency of treatments within {label} classes")),
        "taps": table.to_dict(orient="records"),
        "best_tap": str(best["tap"]),
    }, out / "metrics.json")
    return out
