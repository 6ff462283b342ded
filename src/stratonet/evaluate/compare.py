"""Compare two feature sets on the same samples: correlation of their most important features (thesis Fig. 11).

The top-N features of each set are ranked by random-forest impurity importance for a label (e.g. the MoA); the
Pearson correlation between every top feature of A and every top feature of B, across the joined samples, is
written to ``<run>/evaluate/compare/<A>_vs_<B>/correlation.csv`` and drawn as ``correlation.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.errors import StratoNetError
from stratonet.evaluate._common import (
    clean_matrix, default_set_name, load_profiles, require_column, safe_name, untrained_note,
)
from stratonet.core.runinfo import write_json

JOIN_CANDIDATES = ["Metadata_Source", "Metadata_Batch", "Metadata_Plate", "Metadata_Well", "Metadata_Site"]


def rf_importance(x: np.ndarray, y: np.ndarray, seed: int = 0, n_estimators: int = 200,
                  n_jobs: int = 1) -> np.ndarray:
    """Random-forest impurity (mean decrease in Gini) importance of each column of ``x`` for labels ``y``."""
    from sklearn.ensemble import RandomForestClassifier

    rf = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=n_jobs,
                                class_weight="balanced")
    rf.fit(x, y)
    return rf.feature_importances_


def top_features(x: np.ndarray, names: list[str], y: np.ndarray, n: int = 50, seed: int = 0,
                 n_estimators: int = 200) -> pd.DataFrame:
    """The ``n`` most important features (RF impurity importance), most important first.

    Returns
    -------
    DataFrame with ``rank`` (1-based), ``feature``, ``importance``.
    """
    imp = rf_importance(x, y, seed=seed, n_estimators=n_estimators)
    order = np.argsort(-imp, kind="stable")[:n]
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1), "feature": [names[i] for i in order],
                         "importance": imp[order]})


def cross_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation between every column of ``a`` and every column of ``b`` (same rows).

    Returns an array (a.shape[1], b.shape[1]); columns with zero variance give NaN.
    """
    if a.shape[0] != b.shape[0]:
        raise ValueError("a and b need the same number of rows")
    az = a - a.mean(axis=0)
    bz = b - b.mean(axis=0)
    na = np.sqrt((az**2).sum(axis=0))
    nb = np.sqrt((bz**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (az.T @ bz) / np.outer(na, nb)


def join_keys(a: pd.DataFrame, b: pd.DataFrame, on: list[str] | None = None) -> list[str]:
    """The metadata columns to join two tables on: ``on`` if given, else the sample keys both tables have."""
    if on:
        for col in on:
            if col not in a.columns or col not in b.columns:
                raise StratoNetError(f"join column '{col}' is not in both tables")
        return list(on)
    keys = [c for c in JOIN_CANDIDATES if c in a.columns and c in b.columns]
    if "Metadata_Well" not in keys:
        raise StratoNetError("the two tables share no Metadata_Plate/Metadata_Well keys to join on (use --on)")
    return keys


def plot_heatmap(corr: pd.DataFrame, path: Path, title: str, xlabel: str, ylabel: str) -> Path:
    """Heatmap of a correlation matrix (diverging colour map, -1..1) with feature names as tick labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nr, nc = corr.shape
    size = max(5.0, 0.13 * max(nr, nc) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.0, size), dpi=110)
    im = ax.imshow(corr.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto",
                   interpolation="nearest")
    font = 8 if max(nr, nc) <= 20 else 4
    ax.set_xticks(range(nc))
    ax.set_xticklabels([str(c) for c in corr.columns], rotation=90, fontsize=font)
    ax.set_yticks(range(nr))
    ax.set_yticklabels([str(c) for c in corr.index], fontsize=font)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="Pearson r")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run_compare(a_path: str | Path, b_path: str | Path, run_dir: str | Path, label: str = "Metadata_moa",
                name_a: str | None = None, name_b: str | None = None, top: int = 50, seed: int = 0,
                n_estimators: int = 200, on: list[str] | None = None) -> Path:
    """Correlation heatmap of the top features of two feature sets on the same samples.

    Parameters
    ----------
    a_path, b_path : path
        Feature or profile tables sharing sample keys (``Metadata_Plate``/``Metadata_Well``[/``Metadata_Site``]).
    run_dir : path
        Run folder; output goes to ``<run_dir>/evaluate/compare/<A>_vs_<B>/``.
    label : str
        Metadata column the random forests rank features for (must be in A).
    top : int
        Number of top features per set (the thesis used 50).

    Returns
    -------
    Path of the output folder.
    """
    a, fa, prov_a = load_profiles(a_path)
    b, fb, prov_b = load_profiles(b_path)
    require_column(a, label, a_path)
    name_a = name_a or default_set_name(a_path, prov_a)
    name_b = name_b or default_set_name(b_path, prov_b)
    if name_a == name_b:
        name_a, name_b = f"{name_a}_A", f"{name_b}_B"
    keys = join_keys(a, b, on)
    for df, path in ((a, a_path), (b, b_path)):
        dup = df.duplicated(keys)
        if dup.any():
            raise StratoNetError(f"{path}: {int(dup.sum())} duplicate rows for keys {keys}; aggregate first "
                                 "(stratonet profile) or pass --on")
    # B's features that share a name with a column of A get a suffix; B's other metadata are not needed
    rename = {f: f"{f} ({name_b})" for f in fb if f in a.columns}
    b = b[keys + fb].rename(columns=rename)
    fb = [rename.get(f, f) for f in fb]
    a = a.assign(**{k: a[k].astype(str) for k in keys})
    b = b.assign(**{k: b[k].astype(str) for k in keys})
    joined = a.merge(b, on=keys, how="inner")
    if len(joined) < 3:
        raise StratoNetError(f"only {len(joined)} sample(s) shared by {a_path} and {b_path} on {keys}")
    y = joined[label].astype(str).to_numpy()
    if len(np.unique(y)) < 2:
        raise StratoNetError(f"{a_path}: label '{label}' has a single class on the shared samples")

    xa, na = clean_matrix(joined, fa)
    xb, nb = clean_matrix(joined, fb)
    if not na or not nb:
        raise StratoNetError("one of the feature sets has no non-constant feature on the shared samples")
    top_a = top_features(xa, na, y, n=top, seed=seed, n_estimators=n_estimators)
    top_b = top_features(xb, nb, y, n=top, seed=seed, n_estimators=n_estimators)
    ia = [na.index(f) for f in top_a["feature"]]
    ib = [nb.index(f) for f in top_b["feature"]]
    corr = pd.DataFrame(cross_correlation(xa[:, ia], xb[:, ib]), index=top_a["feature"], columns=top_b["feature"])
    corr.index.name = f"{name_a} \\ {name_b}"

    out = Path(run_dir) / "evaluate" / "compare" / f"{safe_name(name_a)}_vs_{safe_name(name_b)}"
    out.mkdir(parents=True, exist_ok=True)
    corr.to_csv(out / "correlation.csv")
    pd.concat([top_a.assign(feature_set=name_a), top_b.assign(feature_set=name_b)]).to_csv(
        out / "top_features.csv", index=False)
    note = untrained_note(prov_a) or untrained_note(prov_b)
    plot_heatmap(corr, out / "correlation.png",
                 f"{name_a} vs {name_b}: top-{top} features by RF importance for {label}{note}",
                 xlabel=f"{name_b} (most important left)", ylabel=f"{name_a} (most important top)")

    abs_r = np.abs(corr.to_numpy(dtype=float))
    # A feature constant over the joined samples has no correlation (a NaN row or column): it has no "best" match.
    defined = np.isfinite(abs_r)
    best_a = np.where(defined.any(axis=1), np.max(np.where(defined, abs_r, -np.inf), axis=1), np.nan)
    best_b = np.where(defined.any(axis=0), np.max(np.where(defined, abs_r, -np.inf), axis=0), np.nan)
    metrics = {
        "feature_set": f"{name_a}_vs_{name_b}",
        "provenance": {name_a: prov_a, name_b: prov_b},
        "label": label,
        "join_keys": keys,
        "n_samples": int(len(joined)),
        "top": int(top),
        "rf": {"n_estimators": n_estimators, "seed": seed},
        "mean_abs_r": float(abs_r[defined].mean()) if defined.any() else float("nan"),
        "median_best_abs_r_a": _finite_median(best_a),
        "median_best_abs_r_b": _finite_median(best_b),
        "fraction_abs_r_over_0_5": float(np.nanmean(abs_r > 0.5)),
        "n_features_without_correlation": int((~defined.any(axis=1)).sum() + (~defined.any(axis=0)).sum()),
    }
    write_json(metrics, out / "metrics.json")
    return out


def _finite_median(values: np.ndarray) -> float:
    """Median of the finite values (NaN when there are none), without numpy's all-NaN warning."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")
