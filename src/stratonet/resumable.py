"""Resumable, incremental table output with bounded memory.

Rows are written in parts (``<out>.parts/part-NNNNN.parquet``, each written atomically). A rerun reads the keys
already written and skips them; an interrupted run loses nothing already flushed. ``finalize`` merges the parts
into ``<out>`` (streamed row group by row group) and removes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stratonet.tables import SITE_KEYS, discard_on_error


class PartitionedWriter:
    """Append DataFrames as Parquet parts; resume from what exists.

    Parameters
    ----------
    out : path
        Final Parquet file.
    key_columns : sequence of str
        Columns that identify a unit of work (default: plate, well, site).
    rows_per_part : int
        Buffered rows before a part is flushed.
    """

    def __init__(self, out: str | Path, key_columns: Sequence[str] = SITE_KEYS, rows_per_part: int = 2048):
        self.out = Path(out)
        self.parts_dir = self.out.with_name(self.out.name + ".parts")
        self.key_columns = list(key_columns)
        self.rows_per_part = rows_per_part
        self._buffer: list[pd.DataFrame] = []
        self._buffered = 0
        self.out.parent.mkdir(parents=True, exist_ok=True)

    def _part_files(self) -> list[Path]:
        return sorted(self.parts_dir.glob("part-*.parquet")) if self.parts_dir.exists() else []

    def done_keys(self) -> set[tuple]:
        """Keys already written, in the final file or in parts."""
        files = self._part_files() + ([self.out] if self.out.exists() else [])
        keys: set[tuple] = set()
        for f in files:
            t = pq.read_table(f, columns=self.key_columns).to_pandas()
            keys.update(map(tuple, t[self.key_columns].astype(str).itertuples(index=False, name=None)))
        return keys

    def write(self, df: pd.DataFrame) -> None:
        """Buffer rows; flush a part when the buffer is full."""
        if df is None or df.empty:
            return
        self._buffer.append(df)
        self._buffered += len(df)
        if self._buffered >= self.rows_per_part:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows as one part, atomically."""
        if not self._buffer:
            return
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        n = len(self._part_files())
        df = pd.concat(self._buffer, ignore_index=True)
        part = self.parts_dir / f"part-{n:05d}.parquet"
        tmp = part.with_suffix(".tmp")
        with discard_on_error(tmp, part):  # a full disk leaves no half-written part behind
            df.to_parquet(tmp, index=False)
            tmp.replace(part)
        self._buffer, self._buffered = [], 0

    def finalize(self) -> Path:
        """Merge the existing output and all parts into the final file, streamed, and remove the parts."""
        self.flush()
        parts = self._part_files()
        if not parts:
            return self.out
        sources = ([self.out] if self.out.exists() else []) + parts
        schema = _unified_schema(sources)
        tmp = self.out.with_name(self.out.name + ".tmp")
        with discard_on_error(tmp, self.out):
            with pq.ParquetWriter(tmp, schema) as writer:
                for src in sources:
                    pf = pq.ParquetFile(src)
                    for i in range(pf.num_row_groups):
                        tbl = pf.read_row_group(i)
                        writer.write_table(_conform(tbl, schema))
            tmp.replace(self.out)
        for p in parts:
            p.unlink()
        self.parts_dir.rmdir()
        return self.out


def _unified_schema(files: Iterable[Path]) -> pa.Schema:
    schemas = [pq.read_schema(f) for f in files]
    return pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")


def _conform(tbl: pa.Table, schema: pa.Schema) -> pa.Table:
    if tbl.schema.remove_metadata().equals(schema):  # common case: nothing to cast or add
        return tbl.replace_schema_metadata(schema.metadata)
    index = {name: i for i, name in enumerate(tbl.column_names)}  # name lookups on wide tables are O(columns)
    cols = []
    for field in schema:
        i = index.get(field.name)
        if i is None:
            cols.append(pa.nulls(len(tbl), type=field.type))
        else:
            col = tbl.column(i)
            cols.append(col if col.type == field.type else col.cast(field.type))
    return pa.Table.from_arrays(cols, schema=schema)


class ErrorLog:
    """Failed units of work, written as a table next to the output (``--on-error skip``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict] = []

    def add(self, site: str, stage: str, message: str, **keys: object) -> None:
        self.rows.append({"site": site, "stage": stage, "error": message, **{k: str(v) for k, v in keys.items()}})

    def __len__(self) -> int:
        return len(self.rows)

    def save(self) -> Path | None:
        """Write the errors table (Parquet + CSV for a quick look); with no errors, remove a table left by an
        earlier run (its sites were retried and succeeded, so it would be stale)."""
        if not self.rows:
            for stale in (self.path.with_suffix(".csv"), self.path.with_suffix(".parquet")):
                stale.unlink(missing_ok=True)
            return None
        df = pd.DataFrame(self.rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(self.path.with_suffix(".csv"), index=False)
        df.to_parquet(self.path.with_suffix(".parquet"), index=False)
        return self.path.with_suffix(".csv")
