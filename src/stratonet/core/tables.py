"""Plain tables in and out: Parquet by default, CSV(.gz) accepted.

Metadata columns start with ``Metadata_``; every other numeric column is a feature unless told otherwise.
Never rely on column order.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

import pandas as pd

from stratonet.core.errors import ConfigError, InputFileError, StratoNetError

METADATA_PREFIX = "Metadata_"
SITE_KEYS = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
#: Columns that tell apart rows sharing a site (single-cell crops); the first one present completes a row's key.
ROW_ID_COLUMNS = ("Metadata_ObjectNumber", "Metadata_Cell_ID", "Metadata_CellID", "Metadata_Crop", "Metadata_RowID")
PROVENANCE_KEY = "stratonet"


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a Parquet, CSV, TSV or gzipped CSV/TSV table.

    Parameters
    ----------
    path : str or Path
        Table file, or an fsspec URL (``s3://``, ``https://``; read whole, see :mod:`stratonet.core.remote`). The format
        is taken from the suffix.
    columns : sequence of str, optional
        Only read these columns (Parquet reads are then column-pruned).

    Returns
    -------
    pandas.DataFrame
    """
    from stratonet.core.remote import is_url, read_bytes

    remote = is_url(path)
    p = Path(path)
    if not remote and not p.exists():
        raise InputFileError(str(p), "file not found")
    name = (str(path).split("?")[0].rsplit("/", 1)[-1] if remote else p.name).lower()
    src = io.BytesIO(read_bytes(str(path))) if remote else p  # a URL is read whole, with retries
    try:
        if name.endswith(".parquet") or name.endswith(".pq") or (not remote and p.is_dir()):
            return pd.read_parquet(src, columns=list(columns) if columns else None)
        sep = "\t" if (name.endswith(".tsv") or name.endswith(".tsv.gz") or name.endswith(".txt")) else ","
        compression = "gzip" if remote and name.endswith(".gz") else "infer"
        df = pd.read_csv(src, sep=sep, usecols=list(columns) if columns else None, low_memory=False,
                         compression=compression)
        return df
    except StratoNetError:
        raise
    except Exception as exc:  # pyarrow / pandas parse errors
        raise InputFileError(str(path) if remote else str(p), f"cannot read table ({type(exc).__name__}: {exc})") from exc


TABLE_SUFFIXES = (".parquet", ".tsv", ".tsv.gz", ".csv", ".csv.gz")


def check_table_name(path: str | Path) -> None:
    """Refuse an output name whose suffix names no table format (check it before the work, not after)."""
    if not Path(path).name.lower().endswith(TABLE_SUFFIXES):
        raise ConfigError(f"{path}: unknown table format (use .parquet, .csv, .csv.gz or .tsv)")


def write_table(df: pd.DataFrame, path: str | Path, provenance: dict | None = None) -> Path:
    """Write a table atomically; the format follows the suffix (.parquet, .csv, .csv.gz, .tsv).

    Parameters
    ----------
    df : DataFrame
    path : str or Path
    provenance : dict, optional
        Stored in the Parquet schema metadata under ``stratonet`` (see :func:`read_provenance`), e.g.
        ``{"feature_set": "deep", "model": "stratonet50", "weights": "untrained (seed 0)"}``.
        For CSV output it is written beside the table as ``<name>.provenance.json``.
    """
    p = Path(path)
    check_table_name(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    name = p.name.lower()
    with discard_on_error(tmp, p):
        if name.endswith(".parquet"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            if provenance:
                meta = dict(table.schema.metadata or {})
                meta[PROVENANCE_KEY] = json.dumps(provenance, default=str).encode()
                table = table.replace_schema_metadata(meta)
            pq.write_table(table, tmp)
        elif name.endswith(".tsv") or name.endswith(".tsv.gz"):
            df.to_csv(tmp, sep="\t", index=False, compression="gzip" if name.endswith(".gz") else None)
        else:
            df.to_csv(tmp, index=False, compression="gzip" if name.endswith(".gz") else None)
        tmp.replace(p)
    if provenance and not name.endswith(".parquet"):
        p.with_name(p.name + ".provenance.json").write_text(json.dumps(provenance, indent=2, default=str))
    return p


@contextmanager
def discard_on_error(tmp: str | Path, final: str | Path | None = None) -> Iterator[Path]:
    """Remove the temporary file ``tmp`` if the block fails, so no half-written part is left behind.

    A full disk, a read-only or a permission error becomes a one-line :class:`~stratonet.core.errors.OutputError`
    naming ``final`` (the file being written); other errors pass through unchanged.
    """
    from stratonet.core.errors import OutputError, storage_reason

    tmp = Path(tmp)
    try:
        yield tmp
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        reason = storage_reason(exc)
        if reason is not None:
            raise OutputError(str(final or tmp), reason) from exc
        raise


def read_provenance(path: str | Path) -> dict:
    """The provenance dict stored with a table by :func:`write_table` ({} if none).

    A deep feature table from an untrained network carries ``{"weights": "untrained (seed N)", ...}``; every later
    stage copies it forward so the report can warn.
    """
    p = Path(path)
    side = p.with_name(p.name + ".provenance.json")
    if side.exists():
        return json.loads(side.read_text())
    if p.name.lower().endswith(".parquet") and p.exists():
        import pyarrow.parquet as pq

        meta = pq.read_schema(p).metadata or {}
        raw = meta.get(PROVENANCE_KEY.encode())
        if raw:
            return json.loads(raw)
    return {}


def stamp_provenance(path: str | Path, provenance: dict) -> None:
    """Rewrite an existing Parquet file's provenance metadata, streamed row group by row group (no-op if absent)."""
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.exists():
        return
    pf = pq.ParquetFile(p)
    meta = dict(pf.schema_arrow.metadata or {})
    meta[PROVENANCE_KEY.encode()] = json.dumps(provenance, default=str).encode()
    schema = pf.schema_arrow.with_metadata(meta)
    tmp = p.with_name(p.name + ".tmp")
    with discard_on_error(tmp, p):
        with pq.ParquetWriter(tmp, schema) as writer:
            for i in range(pf.num_row_groups):
                writer.write_table(pf.read_row_group(i).replace_schema_metadata(meta))
        tmp.replace(p)


def is_untrained(provenance: dict) -> str | None:
    """The 'untrained (seed N)' label if the provenance says the features came from an untrained network."""
    label = str(provenance.get("weights", ""))
    return label if label.startswith("untrained") else None


def metadata_columns(df: pd.DataFrame) -> list[str]:
    """Columns that start with ``Metadata_``."""
    return [c for c in df.columns if str(c).startswith(METADATA_PREFIX)]


#: Columns of a single-cell or crop table that identify or place an object rather than describe it: never features.
def is_identifier(col: str) -> bool:
    """True for object and image numbers, parent links, neighbour object numbers and absolute positions."""
    col = str(col)
    return (
        col in ("ObjectNumber", "ImageNumber")
        or "_Parent_" in col
        or col.startswith("Parent_")
        or "_Number_Object_Number" in col
        or "ObjectNumber" in col
        or "_Location_" in col
        or col.startswith("Location_")
        or "_AreaShape_Center_" in col
        or "_AreaShape_BoundingBoxM" in col
        or col.endswith("_TouchesBorder")
    )


def feature_columns(
    df: pd.DataFrame,
    features: Iterable[str] | None = None,
    prefixes: Sequence[str] | None = None,
) -> list[str]:
    """Feature columns of a table.

    Parameters
    ----------
    df : DataFrame
    features : iterable of str, optional
        Explicit feature names; validated to exist.
    prefixes : sequence of str, optional
        Keep only numeric non-metadata columns starting with one of these prefixes.

    Returns
    -------
    list of str
        Numeric, non-``Metadata_`` columns that are not identifiers or positions (:func:`is_identifier`), in
        table order (which carries no meaning).
    """
    if features is not None:
        features = list(features)
        missing = [f for f in features if f not in df.columns]
        if missing:
            raise StratoNetError(f"{len(missing)} feature column(s) not in table, e.g. {missing[:3]}")
        return features
    cols = [
        c
        for c in df.columns
        if not str(c).startswith(METADATA_PREFIX) and not is_identifier(c) and pd.api.types.is_numeric_dtype(df[c])
    ]
    if prefixes:
        cols = [c for c in cols if any(str(c).startswith(p) for p in prefixes)]
    return cols


def non_numeric_columns(df: pd.DataFrame) -> list[str]:
    """Non-``Metadata_`` columns that are not numeric: they cannot be features and are left out of every profile."""
    return [c for c in df.columns
            if not str(c).startswith(METADATA_PREFIX) and not pd.api.types.is_numeric_dtype(df[c])]


def check_finite(df: pd.DataFrame, features: Sequence[str], where: str, allow_nan: bool = True,
                 dtype: type | None = None) -> None:
    """Raise a one-line error naming the feature columns that hold ±inf (and NaN unless ``allow_nan``).

    Parameters
    ----------
    df : DataFrame
    features : sequence of str
        Columns to check.
    where : str
        The table or step, named first in the message (e.g. the input file).
    allow_nan : bool
        NaN is accepted (most steps handle it) unless False.
    dtype : numpy dtype, optional
        Also refuse finite values that overflow this dtype (e.g. ``np.float32``, which turns 1e39 into inf).

    Raises
    ------
    StratoNetError
        ``<where>: ±inf in 2 feature column(s): f1 (3 rows), f7 (1 row)`` (at most 5 named).
    """
    import numpy as np

    bad: list[tuple[str, int]] = []
    limit = float(np.finfo(dtype).max) if dtype is not None else np.inf
    for c in features:
        x = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        n = int(np.count_nonzero(np.isinf(x) | (np.abs(x) > limit)))
        if not allow_nan:
            n += int(np.count_nonzero(np.isnan(x)))
        if n:
            bad.append((str(c), n))
    if bad:
        what = "±inf" + ("" if allow_nan else " or NaN") + (f" (or beyond {np.dtype(dtype).name})" if dtype else "")
        named = ", ".join(f"{c} ({n} row{'s' if n > 1 else ''})" for c, n in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise StratoNetError(f"{where}: {what} in {len(bad)} feature column(s): {named}{more}; "
                             "replace or drop those values (NaN is handled)" if allow_nan else
                             f"{where}: {what} in {len(bad)} feature column(s): {named}{more}")


def site_id(plate: object, well: object, site: object) -> str:
    """A site's printable name, ``plate/well/site``."""
    return f"{plate}/{well}/{site}"
