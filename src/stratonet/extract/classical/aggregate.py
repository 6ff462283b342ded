"""Single cells -> sites and wells: median (the field's default, as pycytominer) and mean, with object counts.

The aggregate tables keep suffix-free CellProfiler names; the median table is ``site.parquet`` /
``well.parquet`` and the mean table ``site_mean.parquet`` / ``well_mean.parquet``. Identifiers and absolute
positions (object numbers, parent links, ``Location_*``, bounding-box corners) are not aggregated.
"""

from __future__ import annotations

import pandas as pd

from stratonet.extract.classical.measure import is_identifier
from stratonet.core.tables import metadata_columns


def profile_columns(single_cells: pd.DataFrame) -> list[str]:
    """Numeric columns of a single-cell table that describe cells (not identifiers)."""
    return [
        c for c in single_cells.columns
        if not c.startswith("Metadata_") and not is_identifier(c) and pd.api.types.is_numeric_dtype(single_cells[c])
    ]


def aggregate_cells(
    single_cells: pd.DataFrame,
    by: list[str],
    how: str = "median",
    counts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Aggregate single cells per group of metadata columns.

    Parameters
    ----------
    single_cells : DataFrame
        Single-cell table (``Metadata_*`` columns plus features).
    by : list of str
        Grouping columns, e.g. the site keys or ``[Metadata_Plate, Metadata_Well]``.
    how : {"median", "mean"}
    counts : DataFrame, optional
        Per-group ``Count_Nuclei`` / ``Count_Cells`` (with the ``by`` columns). Groups present here but
        without cells (e.g. empty sites) are kept, with NaN features and their counts.

    Returns
    -------
    DataFrame: the ``by`` columns, the other metadata columns that are constant within each group, counts,
    and one aggregated column per feature.
    """
    if how not in ("median", "mean"):
        raise ValueError(f"how must be 'median' or 'mean', got {how!r}")
    feats = profile_columns(single_cells)
    meta = [c for c in metadata_columns(single_cells) if c not in by]
    if single_cells.empty:
        agg = pd.DataFrame(columns=by + feats)
    else:
        grouped = single_cells.groupby(by, sort=True, dropna=False)
        agg = getattr(grouped[feats], how)().reset_index()
        if meta:
            const = grouped[meta].agg(lambda s: s.iloc[0] if s.nunique(dropna=False) <= 1 else None).reset_index()
            const = const.dropna(axis=1, how="all")
            agg = const.merge(agg, on=by, how="right")
    if counts is not None:
        cnt_cols = by + [c for c in counts.columns if c.startswith("Count_")]
        extra_meta = [c for c in counts.columns if c.startswith("Metadata_") and c not in by and c not in agg.columns]
        agg = counts[cnt_cols + extra_meta].merge(agg, on=by, how="left")
    front = by + [c for c in agg.columns if c.startswith("Metadata_") and c not in by]
    front += [c for c in agg.columns if c.startswith("Count_")]
    return agg[front + [c for c in agg.columns if c not in front]]


def well_counts(site_counts: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Sum per-site ``Count_*`` columns to wells (other constant metadata kept)."""
    cnt = [c for c in site_counts.columns if c.startswith("Count_")]
    out = site_counts.groupby(by, sort=True, dropna=False)[cnt].sum().reset_index()
    meta = [c for c in site_counts.columns if c.startswith("Metadata_") and c not in by and c != "Metadata_Site"]
    if meta:
        const = site_counts.groupby(by, sort=True, dropna=False)[meta].agg(
            lambda s: s.iloc[0] if s.nunique(dropna=False) <= 1 else None
        ).reset_index().dropna(axis=1, how="all")
        out = const.merge(out, on=by)
    return out
