"""Aggregation of feature tables larger than memory, over Parquet files or folders of Parquet shards.

Aggregating single cells to sites or wells is the only profiling step that sees every row; after it the table has
one row per site or well and the rest of the chain (normalise, select, spherize) runs in memory as usual. The
aggregation here streams with polars' lazy engine:

- ``mean`` in one streaming pass over all features (running sums: constant memory);
- ``median`` (exact, a holistic aggregate) in passes over blocks of feature columns sized so that one block of
  values fits in ``block_bytes``; Parquet is columnar, so each pass reads only its columns (plus the keys).

polars was chosen over DuckDB by measurement (benchmarks/RESULTS.md, "Out-of-core profiling"): DuckDB's exact
median ran out of its 3 GB memory limit on a 1.2 GB table, and polars' own streaming median held the whole table.
The result equals :func:`stratonet.profile.aggregate.aggregate` on data that fits in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.core.errors import ConfigError, InputFileError, StratoNetError
from stratonet.core.tables import METADATA_PREFIX

#: Values per median pass (bytes of float32 features held at once, before polars' own working memory).
DEFAULT_BLOCK_BYTES = 512 * 1024**2


def parquet_sources(path: str | Path) -> list[Path]:
    """The Parquet files of a table: the file itself, or every ``*.parquet`` under a folder (sorted)."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(str(p), "file not found")
    if p.is_dir():
        files = sorted(f for f in p.rglob("*.parquet") if f.is_file())
        if not files:
            raise InputFileError(str(p), "folder holds no .parquet files")
        return files
    if not p.name.lower().endswith((".parquet", ".pq")):
        raise InputFileError(str(p), "out-of-core profiling reads Parquet (a file or a folder of shards)")
    return [p]


def uncompressed_bytes(path: str | Path) -> int:
    """Uncompressed size of a Parquet table from its footers (no data read)."""
    import pyarrow.parquet as pq

    total = 0
    for f in parquet_sources(path):
        md = pq.ParquetFile(f).metadata
        total += sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
    return total


def _feature_names(schema, features: Sequence[str] | None) -> list[str]:
    import polars as pl

    if features is not None:
        missing = [f for f in features if f not in schema]
        if missing:
            raise StratoNetError(f"feature column(s) not in the table: {missing[:5]}")
        return list(features)
    return [c for c, t in schema.items() if not c.startswith(METADATA_PREFIX) and t.is_numeric()
            and t != pl.Boolean]


def aggregate_parquet(
    path: str | Path,
    keys: Sequence[str],
    features: Sequence[str] | None = None,
    operation: str = "median",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> pd.DataFrame:
    """Median or mean per group of a Parquet table or folder of shards, in bounded memory.

    Parameters
    ----------
    path : str or Path
        A Parquet file or a folder of Parquet shards with the same columns.
    keys : list of str
        Grouping columns (e.g. plate and well).
    features : list of str, optional
        Feature columns (default: numeric non-``Metadata_`` columns).
    operation : {"median", "mean"}
    block_bytes : int
        For the median: feature values held per pass.

    Returns
    -------
    DataFrame
        As :func:`stratonet.profile.aggregate.aggregate`: the keys, every other ``Metadata_*`` column constant
        within all groups, ``Metadata_n_aggregated`` and the aggregated features, sorted by the keys.
    """
    import polars as pl

    if operation not in ("median", "mean"):
        raise ConfigError(f"unknown aggregation operation '{operation}' (use median or mean)")
    files = [str(f) for f in parquet_sources(path)]
    lf = pl.scan_parquet(files)
    schema = lf.collect_schema()
    keys = list(keys)
    missing = [k for k in keys if k not in schema]
    if missing:
        raise StratoNetError(f"cannot aggregate: grouping column(s) {missing} missing in {path}")
    feats = _feature_names(schema, features)
    meta = [c for c in schema.names() if c.startswith(METADATA_PREFIX) and c not in keys
            and c != "Metadata_n_aggregated"]

    def run(frame: pl.LazyFrame) -> pl.DataFrame:
        return frame.sort(keys, nulls_last=True).collect(engine="streaming")

    grouped = lf.group_by(keys)
    head_aggs = [pl.len().alias("Metadata_n_aggregated")]
    head_aggs += [pl.col(c).n_unique().alias(f"__nunique_{c}") for c in meta]
    head_aggs += [pl.col(c).first().alias(c) for c in meta]
    head = run(grouped.agg(head_aggs))
    n_rows = int(head["Metadata_n_aggregated"].sum())
    constant = [c for c in meta if int(head[f"__nunique_{c}"].max() or 0) <= 1]
    blocks: list[pl.DataFrame] = []
    if operation == "mean":
        blocks.append(run(grouped.agg([pl.col(f).mean() for f in feats])).drop(keys))
    else:
        per_block = max(1, int(block_bytes // max(1, 4 * n_rows)))
        for i in range(0, len(feats), per_block):
            cols = feats[i:i + per_block]
            sub = lf.select(keys + cols).group_by(keys).agg([pl.col(f).median() for f in cols])
            blocks.append(run(sub).drop(keys))
    out = pl.concat([head.select(keys + constant + ["Metadata_n_aggregated"])] + blocks, how="horizontal")
    df = out.to_pandas()
    df["Metadata_n_aggregated"] = df["Metadata_n_aggregated"].astype(np.int64)
    in_types = {f: schema[f] for f in feats}
    for f in feats:  # pandas keeps float32 for float32 input; polars' median/mean return float64
        if in_types[f] == pl.Float32:
            df[f] = df[f].astype(np.float32)
    return df[keys + constant + ["Metadata_n_aggregated"] + feats]
