"""Feature selection with pycytominer, features passed explicitly so deep features work too."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from stratonet.errors import ConfigError
from stratonet.tables import feature_columns

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
    dropped: list[str] = []
    pcm_ops = [o for o in ops if o != "blocklist" or blocklist is None]
    if pcm_ops:
        # pycytominer >= 1.7 splits the old variance filter into a frequency cut and a minimum variance.
        sel = pcm_select(
            profiles=df[feats], features=feats, operation=[
                "frequency_threshold" if o == "variance_threshold" else o for o in pcm_ops
            ] + (["variance_threshold"] if "variance_threshold" in pcm_ops else []),
            corr_threshold=corr_threshold, na_cutoff=na_cutoff, outlier_cutoff=outlier_cutoff,
            freq_cut=freq_cut, unique_cut=unique_cut,
        )
        kept = set(sel.columns)
        dropped = [f for f in feats if f not in kept]
    if "blocklist" in ops and blocklist is not None:
        block = set(blocklist)
        dropped += [f for f in feats if f in block and f not in dropped]
    out = df.drop(columns=dropped)
    out.attrs["dropped_features"] = dropped
    return out
