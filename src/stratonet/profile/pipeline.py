"""The whole profiling chain in one call: aggregate -> annotate -> normalise -> select -> spherize."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from stratonet.profile.aggregate import aggregate
from stratonet.profile.annotate import annotate
from stratonet.profile.normalize import normalize
from stratonet.profile.select import feature_select
from stratonet.profile.spherize import spherize
from stratonet.errors import StratoNetError
from stratonet.progress import warn
from stratonet.tables import check_finite, feature_columns, non_numeric_columns


def run_profile(
    df: pd.DataFrame,
    features: Sequence[str] | None = None,
    aggregate_level: str | None = "well",
    operation: str = "median",
    platemap: pd.DataFrame | None = None,
    normalize_method: str = "mad_robustize",
    by_plate: bool = True,
    reference: str = "negcon",
    select: Sequence[str] | str = ("variance_threshold", "correlation_threshold", "drop_na_columns"),
    corr_threshold: float = 0.9,
    blocklist: Sequence[str] | None = None,
    do_spherize: bool = False,
    spherize_method: str = "ZCA",
    spherize_epsilon: float = 1e-6,
) -> pd.DataFrame:
    """Features -> profiles with the steps in the field's usual order.

    Parameters
    ----------
    df : DataFrame
        Feature table (cells, sites or wells).
    features : list of str, optional
        Feature columns (default: numeric non-Metadata columns).
    aggregate_level : {"site", "well", "treatment"} or None
        Aggregate first (None: keep rows as they are).
    operation : {"median", "mean"}
    platemap : DataFrame, optional
        Annotations joined on well (see :func:`annotate`), applied after aggregation.
    normalize_method : {"standardize", "mad_robustize", "none"}
    by_plate : bool
        Normalise per plate (True) or globally.
    reference : {"negcon", "all"}
        Rows the normalisation (and the spherizing) is fitted on.
    select : list of str or comma-separated str
        Feature-selection operations (see :func:`feature_select`); empty for none.
    do_spherize : bool
        ZCA-whiten after selection, fitted on the reference rows.

    Returns
    -------
    DataFrame
        Profiles; ``.attrs["steps"]`` records what was done and how many features remain.
    """
    feats = feature_columns(df, features)
    if features is None and (text := non_numeric_columns(df)):
        warn(f"{len(text)} non-numeric column(s) left out of the features: {', '.join(map(str, text[:8]))}"
             + (" ..." if len(text) > 8 else "") + " (name them Metadata_* to keep them as metadata)")
    if not feats:
        raise StratoNetError("no numeric feature column to profile (only Metadata_* or text columns)")
    check_finite(df, feats, "feature table")
    steps: list[dict] = [{"step": "input", "rows": len(df), "features": len(feats)}]
    out = df
    if aggregate_level:
        out = aggregate(out, aggregate_level, feats, operation)
        steps.append({"step": f"aggregate {operation} per {aggregate_level}", "rows": len(out), "features": len(feats)})
    if platemap is not None:
        out = annotate(out, platemap)
        steps.append({"step": "annotate", "rows": len(out), "features": len(feats)})
    if normalize_method != "none":
        out = normalize(out, feats, normalize_method, reference, "Metadata_Plate" if by_plate else None)
        where = "per plate" if by_plate else "globally"
        steps.append({"step": f"normalize {normalize_method} vs {reference} {where}", "rows": len(out),
                      "features": len(feats)})
    if select:
        out = feature_select(out, feats, select, corr_threshold=corr_threshold, blocklist=blocklist)
        feats = [f for f in feats if f in out.columns]
        ops = select if isinstance(select, str) else ",".join(select)
        steps.append({"step": f"feature_select {ops}", "rows": len(out), "features": len(feats)})
        if not feats:
            n_in = steps[0]["features"]
            raise StratoNetError(f"feature_select {ops} left 0 of {n_in} features (constant, NA or blocklisted "
                                 "across all rows): nothing to profile; check the input or use --select none")
    if do_spherize:
        out = spherize(out, feats, reference, spherize_method, spherize_epsilon)
        steps.append({"step": f"spherize {spherize_method} on {reference}", "rows": len(out), "features": len(feats)})
    out = out.copy()
    out.attrs["steps"] = steps
    return out
