"""How much of the profiles' variance the plate (or batch) explains, measured before a classifier or retrieval.

Features that carry strong plate effects let a classifier or a nearest-neighbour search learn the plate instead of
the biology (on held-out real crops, Lite0 features scored 0.87 straight and 0.97 after per-plate normalisation).
:func:`plate_effect` measures, per feature, the share of variance between plates (eta squared of a one-way ANOVA),
on the negative-control rows when every plate has some (there the plate is the only design factor), else on all
rows; the median over features is the headline. It warns, naming the fix, when that share is large and the table's
provenance does not show a per-plate normalisation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.core.progress import warn

#: A median plate share of variance above this (and above three times its chance level) is "large".
LARGE = 0.2
FIX = "stratonet profile FEATURES --normalize mad_robustize --by-plate (each plate against its own negcon)"


def plate_column(df: pd.DataFrame) -> str | None:
    """``Metadata_Plate`` when it has two or more values, else ``Metadata_Batch``; None with one group."""
    for c in ("Metadata_Plate", "Metadata_Batch"):
        if c in df.columns and df[c].astype(str).nunique() > 1:
            return c
    return None


def variance_fraction(X: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per column, the between-group share of the total sum of squares (eta squared); NaN for a constant column."""
    X = np.asarray(X, dtype=np.float64)
    total = ((X - np.nanmean(X, axis=0)) ** 2)
    between = np.zeros(X.shape[1])
    grand = np.nanmean(X, axis=0)
    for g in np.unique(groups):
        rows = X[groups == g]
        between += len(rows) * (np.nanmean(rows, axis=0) - grand) ** 2
    tss = np.nansum(total, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tss > 0, between / tss, np.nan)


def normalised_per_plate(provenance: dict | None) -> bool | None:
    """Whether the profile steps in ``provenance`` include a per-plate normalisation; None if no record."""
    steps = ((provenance or {}).get("profile") or {}).get("steps")
    if not steps:
        return None
    return any(str(s.get("step", "")).startswith("normalize") and "per plate" in str(s.get("step", ""))
               for s in steps)


def plate_effect(df: pd.DataFrame, features: Sequence[str], provenance: dict | None = None,
                 column: str | None = None, say: bool = True) -> dict:
    """Measure the plate share of variance; warn (when ``say``) with the fix if large and not normalised per plate.

    Returns
    -------
    dict
        ``column``, ``rows`` (negcon or all), ``n_groups``, ``median_fraction``, ``chance_level``,
        ``normalised_per_plate`` (True / False / None), ``large`` and ``warning`` (the line said, or None).
    """
    from stratonet.evaluate._common import clean_matrix
    from stratonet.profile.controls import negcon_mask

    column = column if column and column in df.columns else plate_column(df)
    if column is None:
        return {"column": None, "note": "one plate (or no plate column): no plate effect to measure"}
    neg = negcon_mask(df, required=False)
    groups_all = df[column].astype(str).to_numpy()
    use_neg = neg.any() and all(neg[groups_all == g].sum() >= 2 for g in np.unique(groups_all))
    rows = neg if use_neg else np.ones(len(df), dtype=bool)
    X, _ = clean_matrix(df.loc[rows], list(features))
    g = groups_all[rows]
    k, n = len(np.unique(g)), int(rows.sum())
    frac = variance_fraction(X, g) if X.size else np.array([np.nan])
    median = float(np.nanmedian(frac)) if np.isfinite(frac).any() else float("nan")
    chance = (k - 1) / max(1, n - 1)
    per_plate = normalised_per_plate(provenance)
    large = bool(np.isfinite(median) and median > max(LARGE, 3 * chance))
    out = {"column": column, "rows": "negcon" if use_neg else "all", "n_groups": k, "n_rows": n,
           "median_fraction": median, "chance_level": chance, "normalised_per_plate": per_plate, "large": large,
           "warning": None}
    if large and not per_plate:
        how = "were not normalised per plate" if per_plate is False else "carry no record of a per-plate normalisation"
        out["warning"] = (f"{column} explains {median:.0%} of the feature variance (median over features, "
                          f"{out['rows']} rows; chance {chance:.0%}) and the profiles {how}: scores may reflect "
                          f"plates, not biology; fix: {FIX}")
        if say:
            warn(out["warning"])
    return out
