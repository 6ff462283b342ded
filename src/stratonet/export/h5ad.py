"""Profiles and single-cell tables as AnnData ``.h5ad`` (obs = metadata, X = features), for scanpy-style analysis.

The file is written with h5py in AnnData's on-disk format (anndata 0.8+ "anndata" 0.1.0 encoding: ``X`` a dense
float32 array, ``obs``/``var`` dataframes with string arrays, categoricals and numeric columns, empty
``obsm``/``varm``/``obsp``/``varp``/``layers``/``uns``). The anndata package itself is not used because its
releases that work with zarr 3 require pandas < 3; ``anndata.read_h5ad`` reads these files (checked with
anndata 0.12 in a separate environment, see docs/omezarr.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.errors import ConfigError, NotAvailableError

_STR = None  # h5py's variable-length UTF-8 string dtype, made on first use


def split_table(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(obs, feature names): metadata and non-numeric columns go to obs, numeric non-``Metadata_`` columns to X."""
    features = [c for c in table.columns if not str(c).startswith("Metadata_")
                and pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])]
    if not features:
        raise ConfigError("the table has no numeric feature columns (all columns start with Metadata_ or are text)")
    return table[[c for c in table.columns if c not in features]], features


def write_h5ad(table: pd.DataFrame, out: Path) -> dict:
    """Write ``table`` to ``out`` (.h5ad); returns ``{"cells": n_obs, "features": n_vars, "obs": [...]}``."""
    try:
        import h5py
    except ImportError:
        raise NotAvailableError("writing .h5ad needs h5py: pip install 'stratonet[formats]'") from None
    global _STR
    _STR = h5py.string_dtype("utf-8")
    obs, features = split_table(table)
    x = table[features].to_numpy(dtype=np.float32)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(out, "w") as f:
        _attrs(f, "anndata", "0.1.0")
        _attrs(f.create_dataset("X", data=x), "array", "0.2.0")
        _dataframe(f, "obs", obs.reset_index(drop=True), [str(i) for i in range(len(obs))])
        _dataframe(f, "var", pd.DataFrame(index=range(len(features))), [str(c) for c in features])
        for name in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
            _attrs(f.create_group(name), "dict", "0.1.0")
    return {"cells": int(x.shape[0]), "features": len(features), "obs": [str(c) for c in obs.columns]}


def _attrs(node, kind: str, version: str) -> None:
    node.attrs["encoding-type"] = kind
    node.attrs["encoding-version"] = version


def _dataframe(f, name: str, df: pd.DataFrame, index: list[str]) -> None:
    """One AnnData dataframe group: its index as ``_index`` and each column by type."""
    g = f.create_group(name)
    _attrs(g, "dataframe", "0.2.0")
    g.attrs["_index"] = "_index"
    g.attrs["column-order"] = np.array([str(c) for c in df.columns], dtype=object).astype(_STR) \
        if len(df.columns) else np.array([], dtype="float64")
    _strings(g, "_index", index)
    for col in df.columns:
        _column(g, str(col), df[col])


def _strings(g, name: str, values) -> None:
    _attrs(g.create_dataset(name, data=np.array([str(v) for v in values], dtype=object), dtype=_STR),
           "string-array", "0.2.0")


def _column(g, name: str, s: pd.Series) -> None:
    """A numeric or boolean column as an array (integers with gaps as float); anything else as a categorical."""
    if pd.api.types.is_bool_dtype(s) and not s.isna().any():
        _attrs(g.create_dataset(name, data=s.to_numpy(dtype=bool)), "array", "0.2.0")
        return
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        kind = "int64" if pd.api.types.is_integer_dtype(s) and not s.isna().any() else "float64"
        _attrs(g.create_dataset(name, data=s.to_numpy(dtype=kind, na_value=np.nan if kind == "float64" else 0)),
               "array", "0.2.0")
        return
    cat = pd.Categorical(s.map(lambda v: None if pd.isna(v) else str(v)))
    grp = g.create_group(name)
    _attrs(grp, "categorical", "0.2.0")
    grp.attrs["ordered"] = False
    _attrs(grp.create_dataset("codes", data=cat.codes.astype(np.int32)), "array", "0.2.0")
    _strings(grp, "categories", list(cat.categories))
