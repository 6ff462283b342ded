"""Small helpers shared by the embed, compare and taps evaluations: load a table, pick features, plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.errors import StratoNetError
from stratonet.core.tables import feature_columns, read_provenance, read_table


def load_profiles(path: str | Path) -> tuple[pd.DataFrame, list[str], dict]:
    """Read a feature or profile table, its feature columns and its provenance.

    Raises
    ------
    StratoNetError
        If the table has no numeric feature column or fewer than 3 rows.
    """
    df = read_table(path)
    drop_attrs(df)
    feats = feature_columns(df)
    if not feats:
        raise StratoNetError(f"{path}: no numeric feature columns (only Metadata_* columns?)")
    if len(df) < 3:
        raise StratoNetError(f"{path}: {len(df)} row(s); at least 3 profiles are needed")
    return df, feats, read_provenance(path)


def drop_attrs(df: pd.DataFrame) -> pd.DataFrame:
    """Empty ``df.attrs`` in place (pandas restores them from Parquet and deep-copies them on every operation,
    which is very slow when a profile's attrs hold long feature lists)."""
    df.attrs.clear()
    return df


def require_column(df: pd.DataFrame, column: str, path: str | Path) -> None:
    """One-line error naming the table when a metadata column is absent."""
    if column not in df.columns:
        meta = [c for c in df.columns if str(c).startswith("Metadata_")]
        raise StratoNetError(f"{path}: column '{column}' not found (metadata columns: {', '.join(meta[:12])})")


def clean_matrix(df: pd.DataFrame, features: list[str]) -> tuple[np.ndarray, list[str]]:
    """Features as float64 with all-NaN and constant columns dropped and remaining NaNs set to the column median."""
    x = np.array(df[features].to_numpy(dtype=np.float64, na_value=np.nan), copy=True)
    x[~np.isfinite(x)] = np.nan
    keep = ~np.all(np.isnan(x), axis=0)
    x = x[:, keep]
    names = [f for f, k in zip(features, keep) if k]
    med = np.nanmedian(x, axis=0)
    rows, cols = np.where(np.isnan(x))
    x[rows, cols] = med[cols]
    sd = x.std(axis=0)
    varying = sd > 0
    return x[:, varying], [f for f, v in zip(names, varying) if v]


def standardize(x: np.ndarray) -> np.ndarray:
    """Z-score each column (constant columns become 0)."""
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    return (x - x.mean(axis=0)) / sd


def untrained_note(provenance: dict) -> str:
    """A second title line '[untrained (seed N)]' for figures made from untrained-network features, else ''."""
    label = str(provenance.get("weights", ""))
    return f"\n[{label}]" if label.startswith("untrained") else ""


def safe_name(name: str) -> str:
    """A file-system friendly version of a feature-set name."""
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))
    return keep or "features"


def default_set_name(path: str | Path, provenance: dict) -> str:
    """Feature-set name: the provenance's ``feature_set`` (plus model), else the file stem."""
    fs = provenance.get("feature_set")
    if fs:
        return str(fs)
    name = Path(path).name
    for suffix in (".parquet", ".csv.gz", ".csv", ".tsv.gz", ".tsv"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem
