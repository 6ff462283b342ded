"""The whole profiling chain in one call: aggregate -> annotate -> normalise -> select -> spherize."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from stratonet.profile.aggregate import aggregate
from stratonet.profile.annotate import annotate
from stratonet.profile.normalize import normalize
from stratonet.profile.protect import ProtectConfig, protect_selection
from stratonet.profile.select import feature_select
from stratonet.profile.spherize import spherize
from stratonet.core.errors import StratoNetError
from stratonet.core.progress import warn
from stratonet.core.tables import feature_columns, non_numeric_columns


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
    na_cutoff: float = 0.05,
    zero_mad: str = "drop",
    mad_epsilon: float = 1e-18,
    protect: ProtectConfig | None = None,
    controls=None,
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
    na_cutoff : float
        ``drop_na_columns`` drops features with more than this share of missing values (0: any).
    zero_mad, mad_epsilon
        See :func:`normalize` (``zero_mad``, ``epsilon``).
    protect : ProtectConfig, optional
        Selection guard (default on): with controls (or a label) the best separating features that selection
        would remove are kept; see :mod:`stratonet.profile.protect`. Its report is ``.attrs["selection"]``.
    controls : stratonet.core.controlnames.ControlNames, optional
        How the table names its controls (e.g. ``negative_control``); applied after the plate map, before
        normalisation, writing ``Metadata_control_type`` negcon / poscon.

    Infinite values are set to NaN first and counted per column (``.attrs["nonfinite"]``); ``blocklist`` in
    ``select`` acts first, before aggregation and normalisation, so blocked features never reach them.

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
    steps: list[dict] = [{"step": "input", "rows": len(df), "features": len(feats)}]
    out = df
    ops = [o.strip() for o in select.split(",")] if isinstance(select, str) else list(select)
    ops = [o for o in ops if o]
    if "blocklist" in ops:
        out = feature_select(out, feats, ["blocklist"], blocklist=blocklist)
        feats = [f for f in feats if f in out.columns]
        ops.remove("blocklist")
        steps.append({"step": "feature_select blocklist (before normalisation)", "rows": len(out),
                      "features": len(feats)})
    out, nonfinite = infinite_to_nan(out, feats)
    if nonfinite:
        named = ", ".join(f"{c} ({n})" for c, n in sorted(nonfinite.items())[:5])
        warn(f"±inf in {len(nonfinite)} feature column(s) set to NaN: {named}" + (" ..." if len(nonfinite) > 5 else ""))
        steps.append({"step": f"{sum(nonfinite.values())} infinite value(s) in {len(nonfinite)} column(s) set to NaN",
                      "rows": len(out), "features": len(feats), "columns": sorted(nonfinite)[:50]})
    if aggregate_level:
        out = aggregate(out, aggregate_level, feats, operation)
        steps.append({"step": f"aggregate {operation} per {aggregate_level}", "rows": len(out), "features": len(feats)})
    if platemap is not None:
        out = annotate(out, platemap)
        steps.append({"step": "annotate", "rows": len(out), "features": len(feats)})
    if controls is not None and not controls.is_default:
        from stratonet.core.controlnames import apply_control_names

        out, note = apply_control_names(out, controls, "profiles")
        if note:
            steps.append({"step": note, "rows": len(out), "features": len(feats)})
    if normalize_method != "none":
        before = out
        out = normalize(out, feats, normalize_method, reference, "Metadata_Plate" if by_plate else None,
                        epsilon=mad_epsilon, zero_mad=zero_mad)
        zero = out.attrs.get("zero_mad_features", [])
        feats = [f for f in feats if f in out.columns]
        where = "per plate" if by_plate else "globally"
        steps.append({"step": f"normalize {normalize_method} vs {reference} {where}", "rows": len(out),
                      "features": len(feats)})
        if not feats:
            raise StratoNetError(zero_mad_message(before, zero, normalize_method, reference, by_plate))
        if zero:
            what = "dropped" if zero_mad == "drop" else "kept (values may be huge)"
            steps.append({"step": f"{len(zero)} feature(s) with zero MAD in the reference {what}",
                          "rows": len(out), "features": len(feats), "columns": zero[:50]})  # the first 50 names
    selection: dict = {}
    if ops:
        selected = feature_select(out, feats, ops, corr_threshold=corr_threshold, blocklist=blocklist,
                                  na_cutoff=na_cutoff)
        selected, selection = protect_selection(out, selected, feats, protect or ProtectConfig())
        out = selected
        feats = [f for f in feats if f in out.columns]
        steps.append({"step": f"feature_select {','.join(ops)}", "rows": len(out), "features": len(feats)})
        if selection.get("protected"):
            steps.append({"step": f"{len(selection['protected'])} separating feature(s) kept ({selection['measure']})",
                          "rows": len(out), "features": len(feats), "columns": selection["protected"][:50]})
        if not feats:
            n_in = steps[0]["features"]
            raise StratoNetError(f"feature_select {','.join(ops)} left 0 of {n_in} features (constant, NA or "
                                 "blocklisted across all rows): nothing to profile; check the input or use --select none")
    if do_spherize:
        out = spherize(out, feats, reference, spherize_method, spherize_epsilon)
        steps.append({"step": f"spherize {spherize_method} on {reference}", "rows": len(out), "features": len(feats)})
    out = out.copy()
    out.attrs["steps"] = steps
    out.attrs["nonfinite"] = nonfinite
    out.attrs["selection"] = selection
    _say_missing(out, feats, steps)
    return out


def _say_missing(out: pd.DataFrame, feats: Sequence[str], steps: list[dict]) -> None:
    """A profile with holes is said so (terminal and steps), never passed on silently."""
    missing = out[list(feats)].isna().sum()
    missing = missing[missing > 0]
    if len(missing):
        warn(f"{int(missing.sum())} missing value(s) left in {len(missing)} feature column(s) of the profiles "
             f"(e.g. {', '.join(map(str, missing.index[:3]))}); add drop_na_columns to --select to drop them")
        steps.append({"step": f"{int(missing.sum())} missing value(s) left in {len(missing)} column(s)",
                      "rows": len(out), "features": len(feats), "columns": list(map(str, missing.index[:50]))})


def zero_mad_message(df: pd.DataFrame, zero: Sequence[str], method: str, reference: str, by_plate: bool) -> str:
    """Why normalisation left no feature (D8): the features are constant everywhere, or only in the reference
    rows (too few of them)."""
    from stratonet.profile.controls import negcon_mask

    if (df[list(zero)].nunique(dropna=True) <= 1).all():
        return (f"left 0 of {len(zero)} features: every one is constant (or NA) across all rows, so normalize "
                f"{method} has nothing to scale; check the input")
    ref = df[negcon_mask(df, required=False)] if reference != "all" else df
    per = ref.groupby("Metadata_Plate").size() if by_plate and "Metadata_Plate" in ref.columns else None
    fewest = (f"; the fewest reference rows in a plate: {int(per.min())} ({per.idxmin()})"
              if per is not None and len(per) else f"; {len(ref)} reference row(s)")
    return (f"normalize {method} vs {reference}: all {len(zero)} feature(s) have zero spread (MAD) in the "
            f"reference rows{fewest}. Normalisation needs at least 2 distinct reference values per feature: add "
            f"{reference} wells, use --reference all, or --normalize none; feature selection is not the cause")


def infinite_to_nan(df: pd.DataFrame, features: Sequence[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Set +-inf in the feature columns to NaN; return the table (a copy if changed) and counts per column."""
    import numpy as np

    counts: dict[str, int] = {}
    for f in features:
        col = df[f]
        if col.dtype.kind == "f":
            n = int(np.isinf(col.to_numpy()).sum())
            if n:
                counts[f] = n
    if not counts:
        return df, counts
    out = df.copy()
    for f in counts:
        out[f] = out[f].mask(np.isinf(out[f].to_numpy()))
    return out, counts
