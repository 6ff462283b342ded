"""Normalise features per plate (or globally) against all wells or the negative controls."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.profile.controls import negcon_mask
from stratonet.core.tables import feature_columns

METHODS = ("standardize", "mad_robustize", "none")
MAD_SCALE = 1.4826  # MAD -> standard deviation of a normal distribution (as pycytominer's RobustMAD)


ZERO_MAD = ("drop", "keep")


def _center_scale(ref: np.ndarray, method: str, epsilon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre and scale per feature of a reference block (rows x features), NaN-aware.

    Also returns a mask of features whose spread in the reference is zero (MAD 0, or SD 0 for standardize).
    Features with no finite reference value get centre NaN (they stay NaN).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: centre NaN, handled by the caller
        if method == "standardize":
            center = np.nanmean(ref, axis=0)
            scale = np.nanstd(ref, axis=0)
            zero = scale == 0
            scale = np.where(zero, 1.0, scale)  # as sklearn's StandardScaler
        else:
            center = np.nanmedian(ref, axis=0)
            mad = np.nanmedian(np.abs(ref - center), axis=0)
            zero = mad == 0
            scale = mad * MAD_SCALE + epsilon
    return center, scale, zero


def normalize(
    df: pd.DataFrame,
    features: Sequence[str] | None = None,
    method: str = "mad_robustize",
    reference: str = "negcon",
    by: Sequence[str] | str | None = "Metadata_Plate",
    epsilon: float = 1e-18,
    zero_mad: str = "drop",
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
        Added to the MAD to avoid division by zero (pycytominer's ``mad_robustize_epsilon``, 1e-18).
    zero_mad : {"drop", "keep"}
        Features whose MAD is zero in the reference rows of any group (e.g. a count most controls share):
        with pycytominer's tiny epsilon they become values up to 1e15-1e19, which swamp every distance.
        ``drop`` removes them, ``keep`` keeps pycytominer's values. Either way they are listed in
        ``.attrs["zero_mad_features"]``.

    Returns
    -------
    DataFrame
        A copy with the features normalised (float64).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown normalisation '{method}' (use {', '.join(METHODS)})")
    if zero_mad not in ZERO_MAD:
        raise ConfigError(f"unknown zero-MAD policy '{zero_mad}' (use {', '.join(ZERO_MAD)})")
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
    zero_any = np.zeros(len(feats), bool)
    for g in np.unique(codes):
        rows = codes == g
        ref_rows = rows & ref_mask
        if not ref_rows.any():
            name = "/".join(str(v) for v in df.loc[rows, by_cols].iloc[0]) if by_cols else "table"
            raise StratoNetError(f"plate {name}: no {reference} reference rows to normalise against")
        center, scale, zero = _center_scale(X[ref_rows], method, epsilon)
        zero_any |= zero
        result[rows] = (X[rows] - center) / scale
    out[feats] = result
    flagged = [f for f, z in zip(feats, zero_any) if z] if method == "mad_robustize" else []
    if flagged and zero_mad == "drop":
        out = out.drop(columns=flagged)
    out.attrs["zero_mad_features"] = flagged
    out.attrs["zero_mad_policy"] = zero_mad
    return out
