"""Embeddings of a profile table: PCA explained variance and a seeded UMAP coloured by class.

Outputs go to ``<run>/evaluate/embed/<feature_set>/``: ``pca_variance.csv`` (component, explained, cumulative),
``pca_variance.png``, ``umap.csv`` (metadata + UMAP_1, UMAP_2), ``umap.png`` and ``metrics.json``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.errors import StratoNetError
from stratonet.evaluate._common import (
    clean_matrix, default_set_name, load_profiles, require_column, safe_name, standardize, untrained_note,
)
from stratonet.core.runinfo import write_json
from stratonet.core.tables import metadata_columns


def pca_variance(x: np.ndarray, max_components: int | None = None) -> pd.DataFrame:
    """Explained variance ratio per principal component and its cumulative sum.

    Parameters
    ----------
    x : ndarray (n_samples, n_features)
        Features, already scaled as wanted (the CLI z-scores them).
    max_components : int, optional
        Keep at most this many components (default: all, ``min(n_samples, n_features)``).

    Returns
    -------
    DataFrame with columns ``component`` (1-based), ``explained``, ``cumulative``.
    """
    from sklearn.decomposition import PCA

    n = min(x.shape)
    if max_components:
        n = min(n, max_components)
    pca = PCA(n_components=n, svd_solver="full").fit(x)
    ratio = pca.explained_variance_ratio_
    return pd.DataFrame({"component": np.arange(1, n + 1), "explained": ratio, "cumulative": np.cumsum(ratio)})


def umap_embedding(x: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1,
                   metric: str = "euclidean") -> np.ndarray:
    """A 2-D UMAP of ``x`` (umap-learn), seeded for reproducibility.

    ``n_neighbors`` is capped at ``n_samples - 1`` so small plates work; at least 4 samples are needed.
    """
    import umap

    n = x.shape[0]
    if n < 4:
        raise StratoNetError(f"UMAP needs at least 4 profiles, got {n}")
    k = max(2, min(n_neighbors, n - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap's "n_jobs overridden by random_state" and small-graph notes
        reducer = umap.UMAP(n_neighbors=k, min_dist=min_dist, metric=metric, random_state=seed, n_jobs=1,
                            init="spectral" if n > k + 1 else "random")
        return np.asarray(reducer.fit_transform(x), dtype=np.float64)


def class_silhouette(x: np.ndarray, labels: pd.Series) -> float | None:
    """Silhouette score of the classes in ``x`` (None when fewer than 2 classes or a singleton-only labelling)."""
    from sklearn.metrics import silhouette_score

    lab = labels.astype(str).to_numpy()
    n_classes = len(np.unique(lab))
    if n_classes < 2 or n_classes >= len(lab):
        return None
    return float(silhouette_score(x, lab))


def plot_pca_variance(table: pd.DataFrame, path: Path, title: str, max_bars: int = 30) -> Path:
    """Bar plot of explained variance per component with the cumulative curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = table.head(max_bars)
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    ax.bar(t["component"], t["explained"] * 100, color="#4c72b0", label="per component")
    ax.plot(t["component"], t["cumulative"] * 100, color="#dd8452", marker="o", ms=3, label="cumulative")
    ax.axhline(90, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance (%)")
    ax.set_ylim(0, 102)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_scatter(coords: np.ndarray, labels: pd.Series | None, path: Path, title: str,
                 xlabel: str = "UMAP 1", ylabel: str = "UMAP 2") -> Path:
    """Scatter plot of a 2-D embedding coloured by class, with a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=110)
    if labels is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=14, color="#4c72b0")
    else:
        lab = labels.astype(str).to_numpy()
        classes = sorted(np.unique(lab))
        cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
        for i, cls in enumerate(classes):
            m = lab == cls
            ax.scatter(coords[m, 0], coords[m, 1], s=16, color=cmap(i % cmap.N), label=cls, alpha=0.85)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
                  title=labels.name, title_fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run_embed(profiles: str | Path, run_dir: str | Path, name: str | None = None,
              color_by: str = "Metadata_moa", seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1,
              max_components: int | None = None) -> Path:
    """PCA variance and UMAP of a profile table, written under ``<run_dir>/evaluate/embed/<name>/``.

    Parameters
    ----------
    profiles : path
        Profile or feature table (Parquet/CSV); features are z-scored before PCA and UMAP.
    run_dir : path
        Run folder.
    name : str, optional
        Feature-set name (default: the table's provenance ``feature_set``, else its file stem).
    color_by : str
        Metadata column that colours the UMAP (and whose class silhouette is reported); must exist.
    seed : int
        UMAP random state.

    Returns
    -------
    Path of the output folder.
    """
    df, feats, prov = load_profiles(profiles)
    require_column(df, color_by, profiles)
    name = name or default_set_name(profiles, prov)
    out = Path(run_dir) / "evaluate" / "embed" / safe_name(name)
    out.mkdir(parents=True, exist_ok=True)
    x, used = clean_matrix(df, feats)
    if x.shape[1] < 2:
        raise StratoNetError(f"{profiles}: fewer than 2 non-constant features; nothing to embed")
    z = standardize(x)
    note = untrained_note(prov)

    pca = pca_variance(z, max_components)
    pca.to_csv(out / "pca_variance.csv", index=False)
    plot_pca_variance(pca, out / "pca_variance.png", f"PCA variance: {name}{note}")

    coords = umap_embedding(z, seed=seed, n_neighbors=n_neighbors, min_dist=min_dist)
    meta = df[metadata_columns(df)].reset_index(drop=True)
    emb = meta.assign(UMAP_1=coords[:, 0], UMAP_2=coords[:, 1])
    emb.to_csv(out / "umap.csv", index=False)
    labels = df[color_by].reset_index(drop=True)
    plot_scatter(coords, labels, out / "umap.png", f"UMAP: {name}, coloured by {color_by}{note}")

    k90 = int(np.searchsorted(pca["cumulative"].to_numpy(), 0.9) + 1)
    metrics = {
        "feature_set": name,
        "provenance": prov,
        "n_profiles": int(len(df)),
        "n_features": int(len(used)),
        "n_features_dropped": int(len(feats) - len(used)),
        "color_by": color_by,
        "n_classes": int(labels.astype(str).nunique()),
        "pca": {
            "n_components": int(len(pca)),
            "explained_pc1": float(pca["explained"].iloc[0]),
            "components_for_90pct": min(k90, int(len(pca))),
        },
        "umap": {"seed": seed, "n_neighbors": int(min(n_neighbors, len(df) - 1)), "min_dist": min_dist},
        "silhouette_features": class_silhouette(z, labels),
        "silhouette_umap": class_silhouette(coords, labels),
    }
    write_json(metrics, out / "metrics.json")
    return out
