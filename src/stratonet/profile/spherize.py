"""ZCA whitening fitted on the negative controls (pycytominer's Spherize)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.profile.controls import negcon_mask
from stratonet.core.tables import feature_columns


def spherize(
    df: pd.DataFrame,
    features: Sequence[str] | None = None,
    reference: str = "negcon",
    method: str = "ZCA",
    epsilon: float = 1e-6,
) -> pd.DataFrame:
    """Whiten the features with a transform fitted on the reference rows.

    Parameters
    ----------
    df : DataFrame
    features : list of str, optional
    reference : {"negcon", "all"}
        Fit on the negative controls (default) or on all rows.
    method : {"ZCA", "ZCA-cor", "PCA", "PCA-cor"}
    epsilon : float
        Added to the singular values of the reference matrix (pycytominer); larger values whiten less.

    Returns
    -------
    DataFrame
        A copy with the features replaced by their whitened values (column names kept).
    """
    from pycytominer.operations.transform import Spherize

    if method not in ("ZCA", "ZCA-cor", "PCA", "PCA-cor"):
        raise ConfigError(f"unknown spherize method '{method}' (use ZCA, ZCA-cor, PCA or PCA-cor)")
    feats = feature_columns(df, features)
    X = df[feats].astype(np.float64)
    if X.isna().any(axis=None):
        raise StratoNetError("cannot spherize: features contain missing values (select with drop_na_columns first)")
    ref = negcon_mask(df) if reference == "negcon" else np.ones(len(df), dtype=bool)
    try:
        model = Spherize(method=method, epsilon=epsilon, center=True, return_numpy=True).fit(X.loc[ref])
    except ValueError as exc:
        raise StratoNetError(f"cannot spherize on {int(ref.sum())} {reference} rows x {len(feats)} features: {exc}") from exc
    out = df.copy()
    out[feats] = model.transform(X)
    return out
