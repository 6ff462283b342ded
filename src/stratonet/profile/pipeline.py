"""The whole profiling chain in one call: aggregate -> annotate -> normalise -> select -> spherize."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from stratonet.profile.aggregate import aggregate
from stratonet.profile.config import ProfileConfig
from stratonet.profile.annotate import annotate
from stratonet.profile.normalize import normalize
from stratonet.profile.protect import ProtectConfig, protect_selection
from stratonet.profile.select import feature_select
from stratonet.profile.spherize import spherize
from stratonet.core.errors import StratoNetError
from stratonet.core.progress import warn
from stratonet.core.tables import feature_columns, non_numeric_columns


def run_profile(df: pd.DataFrame, cfg: ProfileConfig = ProfileConfig(), features: Sequence[str] | None = None,
                platemap: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features -> profiles with the steps in the field's usual order.

    Parameters
    ----------
    df : DataFrame
        Feature table (cells, sites or wells).
    cfg : ProfileConfig
        The options of every step (see :class:`stratonet.profile.config.ProfileConfig`).
    features : list of str, optional
        Feature columns (default: numeric non-Metadata columns).
    platemap : DataFrame, optional
        Annotations joined on well (see :func:`annotate`), applied after aggregation.

    Infinite values are set to NaN first and counted per column (``.attrs["nonfinite"]``); ``blocklist`` in
    ``cfg.select`` acts first, before aggregation and normalisation, so blocked features never reach them. With
    controls (or a label) the selection guard keeps the best separating features; its report is
    ``.attrs["selection"]``.

    Returns
    -------
    DataFrame
        Profiles; ``.attrs["steps"]`` records what was done and how many features remain.
    """
    feats = _input_features(df, features)
    chain = _Chain(df, feats, [{"step": "input", "rows": len(df), "features": len(feats)}])
    ops = cfg.select_ops()
    if "blocklist" in ops:
        ops.remove("blocklist")
        chain.apply("feature_select blocklist (before normalisation)",
                    lambda t, f: feature_select(t, f, ["blocklist"], blocklist=cfg.blocklist))
    nonfinite = _infinite_step(chain)
    if cfg.aggregate_level:
        chain.apply(f"aggregate {cfg.operation} per {cfg.aggregate_level}",
                    lambda t, f: aggregate(t, cfg.aggregate_level, f, cfg.operation))
    if platemap is not None:
        chain.apply("annotate", lambda t, f: annotate(t, platemap))
    if cfg.controls is not None and not cfg.controls.is_default:
        _controls_step(chain, cfg.controls)
    if cfg.normalize_method != "none":
        _normalize_step(chain, cfg)
    selection = _select_step(chain, cfg, ops) if ops else {}
    if cfg.spherize:
        chain.apply(f"spherize {cfg.spherize_method} on {cfg.reference}",
                    lambda t, f: spherize(t, f, cfg.reference, cfg.spherize_method, cfg.spherize_epsilon))
    out = chain.table.copy()
    out.attrs["steps"] = chain.steps
    out.attrs["nonfinite"] = nonfinite
    out.attrs["selection"] = selection
    _say_missing(out, chain.features, chain.steps)
    return out


class _Chain:
    """The table, its feature columns and the ``steps`` record as the chain runs."""

    def __init__(self, table: pd.DataFrame, features: list[str], steps: list[dict]) -> None:
        self.table, self.features, self.steps = table, features, steps

    def apply(self, name: str, fn) -> None:
        """Run one step ``fn(table, features) -> table``; keep the features still present; record it."""
        self.table = fn(self.table, self.features)
        self.features = [f for f in self.features if f in self.table.columns]
        self.record(name)

    def record(self, name: str, columns: Sequence[str] | None = None) -> None:
        """Add a line to the steps record (with up to 50 column names)."""
        step = {"step": name, "rows": len(self.table), "features": len(self.features)}
        if columns is not None:
            step["columns"] = list(columns)[:50]
        self.steps.append(step)


def _input_features(df: pd.DataFrame, features: Sequence[str] | None) -> list[str]:
    """The feature columns to profile; text columns are said and left out."""
    feats = feature_columns(df, features)
    if features is None and (text := non_numeric_columns(df)):
        warn(f"{len(text)} non-numeric column(s) left out of the features: {', '.join(map(str, text[:8]))}"
             + (" ..." if len(text) > 8 else "") + " (name them Metadata_* to keep them as metadata)")
    if not feats:
        raise StratoNetError("no numeric feature column to profile (only Metadata_* or text columns)")
    return feats


def _infinite_step(chain: _Chain) -> dict[str, int]:
    """Set +-inf to NaN, say so and record it; returns the counts per column."""
    chain.table, nonfinite = infinite_to_nan(chain.table, chain.features)
    if nonfinite:
        named = ", ".join(f"{c} ({n})" for c, n in sorted(nonfinite.items())[:5])
        warn(f"±inf in {len(nonfinite)} feature column(s) set to NaN: {named}" + (" ..." if len(nonfinite) > 5 else ""))
        chain.record(f"{sum(nonfinite.values())} infinite value(s) in {len(nonfinite)} column(s) set to NaN",
                     sorted(nonfinite))
    return nonfinite


def _controls_step(chain: _Chain, controls) -> None:
    """Rewrite the table's own control names to ``Metadata_control_type`` negcon / poscon."""
    from stratonet.core.controlnames import apply_control_names

    chain.table, note = apply_control_names(chain.table, controls, "profiles")
    if note:
        chain.record(note)


def _normalize_step(chain: _Chain, cfg: ProfileConfig) -> None:
    """Normalise against the reference rows; features with zero MAD there are dropped (or kept) and said."""
    before = chain.table
    where = "per plate" if cfg.by_plate else "globally"
    chain.apply(f"normalize {cfg.normalize_method} vs {cfg.reference} {where}",
                lambda t, f: normalize(t, f, cfg.normalize_method, cfg.reference,
                                       "Metadata_Plate" if cfg.by_plate else None, epsilon=cfg.mad_epsilon,
                                       zero_mad=cfg.zero_mad))
    zero = chain.table.attrs.get("zero_mad_features", [])
    if not chain.features:
        raise StratoNetError(zero_mad_message(before, zero, cfg.normalize_method, cfg.reference, cfg.by_plate))
    if zero:
        what = "dropped" if cfg.zero_mad == "drop" else "kept (values may be huge)"
        chain.record(f"{len(zero)} feature(s) with zero MAD in the reference {what}", zero)


def _select_step(chain: _Chain, cfg: ProfileConfig, ops: list[str]) -> dict:
    """Feature selection under the guard that keeps the best separating features; returns the guard's report."""
    before, feats = chain.table, chain.features
    selected = feature_select(before, feats, ops, corr_threshold=cfg.corr_threshold, blocklist=cfg.blocklist,
                              na_cutoff=cfg.na_cutoff)
    selected, selection = protect_selection(before, selected, feats, cfg.protect or ProtectConfig())
    chain.apply(f"feature_select {','.join(ops)}", lambda t, f: selected)
    if selection.get("protected"):
        chain.record(f"{len(selection['protected'])} separating feature(s) kept ({selection['measure']})",
                     selection["protected"])
    if not chain.features:
        n_in = chain.steps[0]["features"]
        raise StratoNetError(f"feature_select {','.join(ops)} left 0 of {n_in} features (constant, NA or "
                             "blocklisted across all rows): nothing to profile; check the input or use --select none")
    return selection


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
