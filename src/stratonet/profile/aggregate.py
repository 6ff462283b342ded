"""Aggregate rows (cells, sites, wells) into profiles per site, well or treatment."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.profile.controls import treatment_columns
from stratonet.core.tables import ROW_ID_COLUMNS, SITE_KEYS, feature_columns, metadata_columns

LEVELS = ("site", "well", "treatment")


def crop_key(df: pd.DataFrame) -> list[str]:
    """``[Metadata_ObjectNumber]`` (or another row id) when the table comes from a crop set, else ``[]``.

    ``extract classical`` on single-cell crops keys its rows by the crop's id: its site tables hold one row per
    crop (with ``Count_Cells``) and its single-cell table the cells of each crop (``ObjectNumber`` inside the
    crop). There a "site" is a crop: grouping by plate, well and field alone would merge the crops of a field.
    A CytoTable-style single-cell table, whose ``Metadata_ObjectNumber`` numbers the cells, keeps the field.
    """
    ids = [c for c in ROW_ID_COLUMNS if c in df.columns][:1]
    classical = any(c in df.columns for c in ("ObjectNumber", "Count_Cells", "Count_Nuclei"))
    return ids if ids and classical else []


def strata_for(df: pd.DataFrame, level: str) -> list[str]:
    """Grouping columns of an aggregation level: site, well or treatment."""
    if level == "site":
        keys = SITE_KEYS + crop_key(df)
    elif level == "well":
        keys = SITE_KEYS[:2]
    elif level == "treatment":
        return treatment_columns(df)
    else:
        raise ConfigError(f"unknown aggregation level '{level}' (use {', '.join(LEVELS)})")
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise StratoNetError(f"cannot aggregate per {level}: column(s) {missing} missing")
    return list(keys)


def aggregate(
    df: pd.DataFrame,
    strata: Sequence[str] | str = "well",
    features: Sequence[str] | None = None,
    operation: str = "median",
) -> pd.DataFrame:
    """Median or mean of the features per group.

    Parameters
    ----------
    df : DataFrame
        Rows to aggregate (single cells, sites or wells).
    strata : str or list of str
        ``"site"``, ``"well"``, ``"treatment"`` or explicit grouping columns.
    features : list of str, optional
        Feature columns (default: numeric non-Metadata columns).
    operation : {"median", "mean"}

    Returns
    -------
    DataFrame
        One row per group: the grouping columns, every other ``Metadata_*`` column that is constant within all
        groups (e.g. a compound's MoA), ``Metadata_n_aggregated`` (rows per group) and the aggregated features.
    """
    if operation not in ("median", "mean"):
        raise ConfigError(f"unknown aggregation operation '{operation}' (use median or mean)")
    keys = strata_for(df, strata) if isinstance(strata, str) else list(strata)
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise StratoNetError(f"cannot aggregate: grouping column(s) {missing} missing")
    feats = feature_columns(df, features)
    grouped = df.groupby(keys, sort=True, dropna=False, observed=True)
    values = getattr(grouped[feats], operation)()
    parts = [grouped.size().rename("Metadata_n_aggregated").to_frame()]
    # Keep metadata that does not vary inside any group (annotations such as MoA).
    others = [c for c in metadata_columns(df) if c not in keys and c != "Metadata_n_aggregated"]
    if others:
        nunique = grouped[others].nunique(dropna=False).max()
        constant = [c for c in others if nunique[c] <= 1]
        if constant:
            parts.insert(0, grouped[constant].first())
    return pd.concat(parts + [values], axis=1).reset_index()
