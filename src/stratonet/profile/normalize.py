"""Normalise features per plate (or globally) against all wells or the negative controls."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.errors import ConfigError, StratoNetError
from stratonet.profile.controls import negcon_mask
from stratonet.tables import feature_columns

METHODS = ("standardize", "mad_robustize", "none")
MAD_SCALE = 1.4826  # MAD -> standard deviation of a normal distribution (as pycytominer's RobustMAD)


def _center_scale(ref: np.ndarray, method: str, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale per feature of a reference block (rows x features), NaN-aware."""
    if method == "standardize":
        center = np.nanmean(ref, axis=0)
        scale = np.nanstd(ref, axis=0)
        scale = np.where(scale == 0, 1.0, scale)  # as sklearn's StandardScaler
    else:
        center = np.nanmedian(ref, axis=0)
        scale = np.nanmedian(np.abs(ref - center), axis=0) * MAD_SCALE + epsilon
    return center, scale


def normalize(
    df: pd.DataFrame,
    features: Sequence[str] | None = None,
    method: str = "mad_robustize",
    reference: str = "negcon",
    by: Sequence[str] | str | None = "Metadata_Plate",
    epsilon: float = 1e-18,
) -> pd.DataFrame:
    """Standardize or MAD-robustize each feature against a reference, per plate.

    ``standardize``: (x - mean) / sd; ``mad_robustize``: (x - median) / (1.4826 MAD + epsilon); the same formulas as
    pycytominer's ``normalize`` (StandardScaler, RobustMAD), computed for all plates at once.

    Parameters
    ----------
    df : DataFrame
    features : list of str, optional
        Feature columns (default: numeric non-Metadata columns). Other columns pass through unchanged.
    method : {"standardize", "mad_robustize", "none"}
    reference : {"negcon", "all"}
        Rows the statistics come from: the negative controls (see :func:`negcon_mask`) or all rows.
    by : str or list of str or None
        Normalise within each group of these columns (default per plate); None for one global normalisation.
    epsilon : float
        Added to the MAD to avoid division by zero.

    Returns
    -------
    DataFrame
        A copy with the features normalised (float64).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown normalisation '{method}' (use {', '.join(METHODS)})")
    if reference not in ("negcon", "all"):
        raise ConfigError(f"unknown normalisation reference '{reference}' (use negcon or all)")
    feats = feature_columns(df, features)
    out = df.copy()
    if method == "none":
        return out
    X = df[feats].to_numpy(dtype=np.float64)
    ref_mask = negcon_mask(df) if reference == "negcon" else np.ones(len(df), dtype=bool)
    by_cols = [by] if isinstance(by, str) else list(by or [])
    missing = [c for c in by_cols if c not in df.columns]
    if missing:
        raise StratoNetError(f"cannot normalise per {missing}: column not in table (use --global)")
    if by_cols:
        codes = df.groupby(by_cols, sort=False, dropna=False, observed=True).ngroup().to_numpy()
    else:
        codes = np.zeros(len(df), dtype=np.int64)
    result = np.empty_like(X)
    for g in np.unique(codes):
        rows = codes == g
        ref_rows = rows & ref_mask
        if not ref_rows.any():
            name = "/".join(str(v) for v in df.loc[rows, by_cols].iloc[0]) if by_cols else "table"
            raise StratoNetError(f"plate {name}: no {reference} reference rows to normalise against")
        center, scale = _center_scale(X[ref_rows], method, epsilon)
        result[rows] = (X[rows] - center) / scale
    out[feats] = result
    return out
