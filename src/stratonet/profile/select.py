"""Feature selection with pycytominer, features passed explicitly so deep features work too."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.core.tables import feature_columns

OPERATIONS = ("variance_threshold", "correlation_threshold", "drop_na_columns", "blocklist", "drop_outliers")


def feature_select(
    df: pd.DataFrame,
    features: Sequence[str] | None = None,
    operations: Sequence[str] | str = ("variance_threshold", "correlation_threshold", "drop_na_columns"),
    corr_threshold: float = 0.9,
    na_cutoff: float = 0.05,
    outlier_cutoff: float = 500.0,
    blocklist: Sequence[str] | None = None,
    freq_cut: float = 0.05,
    unique_cut: float = 0.01,
) -> pd.DataFrame:
    """Drop uninformative features (pycytominer's ``feature_select``).

    Parameters
    ----------
    df : DataFrame
    features : list of str, optional
        Candidate feature columns (default: numeric non-Metadata columns). Other columns are kept.
    operations : list of str or comma-separated str
        Any of ``variance_threshold`` (near-constant features: pycytominer's minimum-variance and frequency cuts), ``correlation_threshold``
        (one of each pair with |r| > ``corr_threshold``), ``drop_na_columns`` (more than ``na_cutoff`` missing),
        ``blocklist`` (pycytominer's CellProfiler blocklist, or the names in ``blocklist``), ``drop_outliers``
        (any |value| > ``outlier_cutoff``).

    Returns
    -------
    DataFrame
        The table without the dropped feature columns; ``.attrs["dropped_features"]`` lists them.
    """
    from pycytominer import feature_select as pcm_select

    ops = [o.strip() for o in operations.split(",")] if isinstance(operations, str) else list(operations)
    ops = [o for o in ops if o]
    bad = [o for o in ops if o not in OPERATIONS]
    if bad:
        raise ConfigError(f"unknown feature-selection operation(s) {bad} (use {', '.join(OPERATIONS)})")
    feats = feature_columns(df, features)
    if not ops:
        return df.copy()
    spread = [o for o in ops if o in ("variance_threshold", "correlation_threshold")]
    if spread and len(df) < 2:  # pycytominer fails inside numpy on one row
        raise StratoNetError(f"feature_select {','.join(spread)} needs at least 2 profiles to measure spread, the "
                             f"table has {len(df)}; aggregate less (e.g. --aggregate none) or use --select "
                             "drop_na_columns or none")
    dropped: list[str] = []
    pcm_ops = [o for o in ops if o != "blocklist" or blocklist is None]
    if pcm_ops:
        # pycytominer >= 1.7 splits the old variance filter into a frequency cut and a minimum variance.
        steps = ["frequency_threshold" if o == "variance_threshold" else o for o in pcm_ops]
        steps += ["variance_threshold"] if "variance_threshold" in pcm_ops else []
        options = dict(corr_threshold=corr_threshold, na_cutoff=na_cutoff, outlier_cutoff=outlier_cutoff,
                       freq_cut=freq_cut, unique_cut=unique_cut)
        remaining = list(feats)
        values = df[feats].to_numpy(dtype=np.float64, na_value=np.nan)
        if "correlation_threshold" in steps and np.isfinite(values).all():
            # pycytominer applies the steps in order on the shrinking feature list; only its correlation step is
            # replaced, by a blockwise version of the same rule that scales to deep feature widths.
            k = steps.index("correlation_threshold")
            remaining = _pycytominer_steps(df, remaining, steps[:k], options)
            pos = {f: i for i, f in enumerate(feats)}
            drop = set(correlated_features(values[:, [pos[f] for f in remaining]], remaining, corr_threshold))
            remaining = [f for f in remaining if f not in drop]
            remaining = _pycytominer_steps(df, remaining, steps[k + 1:], options)
        else:
            remaining = _pycytominer_steps(df, remaining, steps, options)
        kept = set(remaining)
        dropped = [f for f in feats if f not in kept]
    if "blocklist" in ops and blocklist is not None:
        block = set(blocklist)
        dropped += [f for f in feats if f in block and f not in dropped]
    out = df.drop(columns=dropped)
    out.attrs["dropped_features"] = dropped
    return out


def _pycytominer_steps(df: pd.DataFrame, features: list[str], steps: list[str], options: dict) -> list[str]:
    """Features left after pycytominer's ``feature_select`` runs ``steps`` on ``features``.

    As pycytominer does, every step sees all ``features`` and the features any step excludes are dropped (the
    union), so the result does not depend on the order of the steps. The steps are called one by one so that a
    step that fails names itself.
    """
    if not steps or not features:
        return list(features)
    from pycytominer import feature_select as pcm_select

    excluded: set[str] = set()
    for step in steps:
        try:
            sel = pcm_select(profiles=df[list(features)], features=list(features), operation=[step], **options)
        except ValueError as exc:  # scikit-learn's VarianceThreshold refuses when it would keep no feature
            if "No feature in X meets the variance threshold" not in str(exc):
                raise
            return []
        excluded |= set(features) - set(sel.columns)
    return [f for f in features if f not in excluded]


def correlated_features(values: np.ndarray, names: Sequence[str], threshold: float = 0.9,
                        block: int = 1024) -> list[str]:
    """Features to drop so that no pair keeps a Pearson correlation above ``threshold``.

    The rule is pycytominer's ``correlation_threshold``: for every pair with (signed) r > ``threshold``, drop the
    member whose summed |r| with all features is larger. The correlation matrix is built in row blocks, so memory
    stays at ``block`` x n_features instead of n_features^2 (15,000 deep features would need 1.8 GB at once).

    Parameters
    ----------
    values : ndarray, shape (n_samples, n_features)
        Finite values.
    names : sequence of str
        Feature names, one per column.
    threshold : float
        In [0, 1].
    block : int
        Rows of the correlation matrix computed at a time.
    """
    if not 0 <= threshold <= 1:
        raise ConfigError(f"correlation threshold must be in [0, 1], got {threshold}")
    x = np.asarray(values, dtype=np.float64)
    n, p = x.shape
    if p < 2 or n < 2:
        return []
    z = x - x.mean(axis=0)
    norm = np.sqrt((z * z).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = z / norm  # constant features become NaN columns: no correlation, as in np.corrcoef
    abs_sum = np.empty(p)
    pairs_i, pairs_j = [], []
    for r0 in range(0, p, block):
        r1 = min(p, r0 + block)
        c = z[:, r0:r1].T @ z  # (r1 - r0, p)
        abs_sum[r0:r1] = np.nansum(np.abs(c), axis=1)
        rows = np.arange(r0, r1)[:, None]
        with np.errstate(invalid="ignore"):
            hit = (c > threshold) & (np.arange(p)[None, :] < rows)  # lower triangle, as pycytominer
        i, j = np.nonzero(hit)
        pairs_i.append(i + r0)
        pairs_j.append(j)
    i = np.concatenate(pairs_i)
    j = np.concatenate(pairs_j)
    if i.size == 0:
        return []
    rank = np.empty(p, dtype=np.int64)
    rank[np.argsort(abs_sum, kind="quicksort")] = np.arange(p)
    drop = np.unique(np.where(rank[i] > rank[j], i, j))
    return [names[k] for k in drop]
