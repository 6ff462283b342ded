"""Resumable, incremental table output with bounded memory.

Rows are written in parts (``<out>.parts/part-NNNNN.parquet``, each written atomically). A rerun reads the keys
already written and skips them; an interrupted run loses nothing already flushed. ``finalize`` merges the parts
into ``<out>`` (streamed row group by row group), drops rows whose key was already written (a run killed while
finalising leaves both the merged file and its parts) and removes the parts.

Keys are the index's full row identity (:func:`row_key_columns`): plate, well, site, plus a cell or crop id when
the index has one, so crops that share a site are distinct units of work. A writer given a ``signature`` (the
configuration that shapes its rows) refuses to resume output written with another one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stratonet.core.errorlog import ErrorLog  # noqa: F401  (its home was here; runs import it from here)
from stratonet.core.errors import ConfigError
from stratonet.runtime.runguard import fault_point
from stratonet.runtime.runsignature import canonical, refuse_changed
from stratonet.core.tables import ROW_ID_COLUMNS, SITE_KEYS, discard_on_error

SIGNATURE_KEY = b"stratonet.resume"


def row_key_columns(index: pd.DataFrame) -> list[str]:
    """Columns identifying one row of an index: plate, well, site, plus the first cell/crop id column present."""
    return list(SITE_KEYS) + [c for c in ROW_ID_COLUMNS if c in index.columns][:1]


def key_tuples(df: pd.DataFrame, key_columns: Sequence[str]) -> list[tuple]:
    """Row keys as tuples of strings (the form :meth:`PartitionedWriter.done_keys` returns)."""
    return list(df[list(key_columns)].astype(str).itertuples(index=False, name=None))


LEGACY_SIGNATURE_KEYS = (b"stratonet_deep_signature",)  # finished deep tables of earlier versions


def check_resume_settings(out: str | Path, requested: dict, partial: bool = True) -> None:
    """Refuse, naming every changed setting, when ``out`` holds output written with other settings.

    Called before anything is read or written (``partial``: with the settings known so far), so a refused rerun
    leaves the existing run's files (e.g. its ``<stem>.scaling.json``) as they were. New output passes.
    """
    existing = PartitionedWriter(out)
    if existing.has_output():
        refuse_changed(existing.out, existing.stored_signature(), requested, partial=partial)


class PartitionedWriter:
    """Append DataFrames as Parquet parts; resume from what exists.

    Parameters
    ----------
    out : path
        Final Parquet file.
    key_columns : sequence of str
        Columns that identify a unit of work (default: plate, well, site). Use :func:`row_key_columns`.
    rows_per_part : int
        Buffered rows before a part is flushed.
    seconds_per_part : float, optional
        Also flush when the oldest buffered rows are this old, so a kill loses at most this much work.
    signature : dict, optional
        Configuration that shapes the rows; resuming output written with another signature raises
        :class:`~stratonet.core.errors.ConfigError` naming the changed keys.
    """

    def __init__(self, out: str | Path, key_columns: Sequence[str] = SITE_KEYS, rows_per_part: int = 2048,
                 seconds_per_part: float | None = None, signature: dict | None = None):
        self.out = Path(out)
        self.parts_dir = self.out.with_name(self.out.name + ".parts")
        self.key_columns = list(key_columns)
        self.rows_per_part = rows_per_part
        self.seconds_per_part = seconds_per_part
        self.signature = json.loads(json.dumps(signature, default=str)) if signature is not None else None
        self._buffer: list[pd.DataFrame] = []
        self._buffered = 0
        self._buffer_since = 0.0
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if self.parts_dir.exists():
            for stale in self.parts_dir.glob("*.tmp"):  # a part being written when the run died
                stale.unlink(missing_ok=True)
        if self.signature is not None:
            self.check_signature(self.signature)

    # -- configuration signature ---------------------------------------------------------------------------
    @property
    def _signature_file(self) -> Path:
        return self.parts_dir / "signature.json"

    def has_output(self) -> bool:
        """True when rows were written before (a final file or parts)."""
        return self.out.exists() or bool(self._part_files())

    def stored_signature(self) -> dict | None:
        """The signature the existing output was written with (None when unknown)."""
        if self._signature_file.exists():
            return json.loads(self._signature_file.read_text())
        if self.out.exists():
            meta = pq.read_schema(self.out).metadata or {}
            raw = next((meta[k] for k in (SIGNATURE_KEY,) + LEGACY_SIGNATURE_KEYS if k in meta), None)
            return json.loads(raw) if raw else None
        return None

    def check_signature(self, signature: dict) -> None:
        """Refuse (``ConfigError`` naming the changed keys) when existing output has another signature; else
        record ``signature`` as this output's."""
        self.signature = canonical(signature)  # tuples -> lists, as stored
        if self.has_output():
            refuse_changed(self.out, self.stored_signature(), self.signature)
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._signature_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.signature, indent=1, sort_keys=True))
        tmp.replace(self._signature_file)

    def _schema_metadata(self) -> dict[bytes, bytes]:
        if self.signature is None:
            return {}
        return {SIGNATURE_KEY: json.dumps(self.signature, sort_keys=True).encode()}

    def discard(self) -> None:
        """Remove the output and its parts (``--overwrite``)."""
        self.out.unlink(missing_ok=True)
        for legacy in (self.out.with_name(self.out.name + ".resume.json"),):  # earlier deep runs kept it there
            legacy.unlink(missing_ok=True)
        if self.parts_dir.exists():
            for f in self.parts_dir.iterdir():
                f.unlink()
            self.parts_dir.rmdir()

    # -- rows -----------------------------------------------------------------------------------------------
    def _part_files(self) -> list[Path]:
        return sorted(self.parts_dir.glob("part-*.parquet")) if self.parts_dir.exists() else []

    def done_keys(self) -> set[tuple]:
        """Keys already written, in the final file or in parts."""
        files = self._part_files() + ([self.out] if self.out.exists() else [])
        keys: set[tuple] = set()
        for f in files:
            missing = [c for c in self.key_columns if c not in pq.read_schema(f).names]
            if missing:
                raise ConfigError(f"{self.out} has no column {missing[0]}: it was written from an index with "
                                  "other row keys; use --overwrite to start over, or another output")
            t = pq.read_table(f, columns=self.key_columns).to_pandas()
            keys.update(key_tuples(t, self.key_columns))
        return keys

    def check_metadata(self, index: pd.DataFrame, columns_too: bool = True) -> None:
        """Refuse to resume when the index's ``Metadata_*`` values of rows already written changed (issue 26).

        A resume writes only new rows; rows written before keep the metadata they were written with. Rather than
        mixing old and new annotations in one table, the resume is refused with the changed columns named (the
        features would not change: ``--overwrite`` recomputes them; or keep the table and re-annotate it, e.g.
        ``profile --platemap``). ``columns_too``: a column added to or gone from the index counts as a change
        (for outputs that carry every ``Metadata_*`` column of their index).
        """
        files = self._part_files() + ([self.out] if self.out.exists() else [])
        if not files:
            return
        meta = [c for c in index.columns if str(c).startswith("Metadata_") and c not in self.key_columns]
        stored_cols: set[str] = set()
        frames = []
        for f in files:
            names = pq.read_schema(f).names
            stored_cols.update(c for c in names if c.startswith("Metadata_"))
            cols = self.key_columns + [c for c in meta if c in names]
            frames.append(pq.read_table(f, columns=cols).to_pandas())
        old = pd.concat(frames, ignore_index=True).astype(str)
        new = index[self.key_columns + meta].astype(str)
        both = old.merge(new, on=self.key_columns, how="inner", suffixes=("_old", ""))
        changed = [c for c in meta if c + "_old" in both.columns and (both[c + "_old"] != both[c]).any()]
        added = [c for c in meta if c not in stored_cols] if columns_too else []
        dropped = sorted(c for c in stored_cols - set(meta) - set(self.key_columns)
                         if not c.startswith(("Metadata_Tile_", "Metadata_Cell_Count", "Metadata_Location_"))
                         ) if columns_too else []
        if changed or added or dropped:
            what = [f"{c} changed in {int((both[c + '_old'] != both[c]).sum())} written row(s)" for c in changed]
            what += [f"new column {c}" for c in added] + [f"column {c} no longer in the index" for c in dropped]
            raise ConfigError(f"{self.out}: the index's metadata differs from the rows already written: "
                              f"{'; '.join(what[:6])}. A resume would mix old and new annotations; use --overwrite "
                              "to recompute, or keep the table and re-annotate it (profile --platemap)")

    def retain(self, keep: set[tuple], key_columns: Sequence[str]) -> int:
        """Drop rows of the parts whose ``key_columns`` are not in ``keep`` (rows of units never committed).

        Returns the number of rows dropped.
        """
        dropped = 0
        for part in self._part_files():
            table = pq.read_table(part)
            mask = [k in keep for k in key_tuples(table.select(list(key_columns)).to_pandas(), key_columns)]
            if not all(mask):
                dropped += len(mask) - sum(mask)
                tmp = part.with_suffix(".tmp")
                pq.write_table(table.filter(pa.array(mask, type=pa.bool_())), tmp)  # keeps the schema metadata
                tmp.replace(part)
        return dropped

    def write(self, df: pd.DataFrame) -> None:
        """Buffer rows; flush a part when the buffer is full or (with ``seconds_per_part``) old enough."""
        if df is None or df.empty:
            return
        if not self._buffer:
            self._buffer_since = time.monotonic()
        self._buffer.append(df)
        self._buffered += len(df)
        if self._buffered >= self.rows_per_part or self._due():
            self.flush()

    def _due(self) -> bool:
        return bool(self._buffer) and self.seconds_per_part is not None \
            and time.monotonic() - self._buffer_since >= self.seconds_per_part

    def flush(self) -> None:
        """Write buffered rows as one part, atomically."""
        if not self._buffer:
            return
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        parts = self._part_files()
        n = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0
        df = pd.concat(self._buffer, ignore_index=True)
        part = self.parts_dir / f"part-{n:05d}.parquet"
        tmp = part.with_suffix(".tmp")
        table = pa.Table.from_pandas(df, preserve_index=False)
        if self.signature is not None:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **self._schema_metadata()})
        with discard_on_error(tmp, part):  # a full disk leaves no half-written part behind
            pq.write_table(table, tmp, **lean_parquet_options(table.schema))
            tmp.replace(part)
        self._buffer, self._buffered = [], 0

    def finalize(self) -> Path:
        """Merge the existing output and all parts into the final file, streamed, and remove the parts."""
        self.flush()
        parts = self._part_files()
        if not parts:
            self._remove_parts_dir()
            return self.out
        sources = ([self.out] if self.out.exists() else []) + parts
        _merge(sources, self.out, self.key_columns,
               metadata=self._schema_metadata() if self.signature is not None else None)
        fault_point("finalize.merged")  # a kill here leaves the merged file and its parts: the next merge dedupes
        for p in parts:
            p.unlink()
        self._remove_parts_dir()
        return self.out

    def _remove_parts_dir(self) -> None:
        if self.parts_dir.exists():
            self._signature_file.unlink(missing_ok=True)
            for stale in self.parts_dir.glob("*.tmp"):
                stale.unlink()
            if not any(self.parts_dir.iterdir()):
                self.parts_dir.rmdir()


def _first_occurrence_masks(files: list[pq.ParquetFile], key_columns: Sequence[str]) -> list[pa.Array | None]:
    """Per source, a row mask keeping the first occurrence of every key across all sources (None: keep all)."""
    if len(files) < 2 or not key_columns:
        return [None] * len(files)
    frames = []
    for i, pf in enumerate(files):
        if any(c not in pf.schema_arrow.names for c in key_columns):
            return [None] * len(files)
        t = pf.read(columns=list(key_columns)).to_pandas().astype(str)
        t["_src"] = i
        frames.append(t)
    keys = pd.concat(frames, ignore_index=True)
    dup = keys.duplicated(subset=list(key_columns), keep="first").to_numpy()
    if not dup.any():
        return [None] * len(files)
    src = keys["_src"].to_numpy()
    return [pa.array(~dup[src == i]) for i in range(len(files))]


def lean_parquet_options(schema: pa.Schema) -> dict:
    """Parquet writer options for feature tables: dictionary encoding and column statistics only for the
    non-float (metadata) columns. Float features gain nothing from either (their values hardly repeat, and no
    reader filters on them), and on a 15,000-column deep table they cost ~40 % of the write time."""
    keep = [f.name for f in schema if not pa.types.is_floating(f.type)]
    return {"use_dictionary": keep, "write_statistics": keep}


#: A merged table's row groups hold at least this many bytes (or all rows): every write call and row group costs a
#: fixed time per column, ~0.3 s on a 15,000-column deep table, so one row group per small part would dominate.
MERGE_GROUP_BYTES = 128 << 20


def _merge(sources: list[Path], out: Path, key_columns: Sequence[str], metadata: dict | None = None) -> None:
    """Stream ``sources`` into ``out`` (atomic) under their unified schema with ``metadata``, keeping the first row
    of every key.

    Each source is opened once (~0.1 s each on a 15,000-column table); row groups are read one at a time and written
    in groups of about ``MERGE_GROUP_BYTES``, so memory stays bounded by that size plus one source row group."""
    files = [pq.ParquetFile(src) for src in sources]
    schema = _unified_schema(files)
    if metadata:
        schema = schema.with_metadata(metadata)
    masks = _first_occurrence_masks(files, key_columns)
    dropped = sum(len(m) - m.true_count for m in masks if m is not None)
    tmp = out.with_name(out.name + ".tmp")
    with discard_on_error(tmp, out):  # a full disk leaves no half-written file behind
        with pq.ParquetWriter(tmp, schema, **lean_parquet_options(schema)) as writer:
            pending: list[pa.Table] = []
            size = 0
            for pf, mask in zip(files, masks):
                offset = 0
                for i in range(pf.num_row_groups):
                    tbl = pf.read_row_group(i)
                    if mask is not None:
                        tbl = tbl.filter(mask.slice(offset, len(tbl)))
                        offset += pf.metadata.row_group(i).num_rows
                    pending.append(_conform(tbl, schema))
                    size += pending[-1].nbytes
                    if size >= MERGE_GROUP_BYTES:
                        writer.write_table(pa.concat_tables(pending), row_group_size=1 << 30)
                        pending, size = [], 0
            if pending:
                writer.write_table(pa.concat_tables(pending), row_group_size=1 << 30)
        tmp.replace(out)
    if dropped:
        from stratonet.core.progress import get_logger

        get_logger().warning("%s: %d row(s) already written were dropped while merging (duplicate keys)", out,
                             dropped)


def _unified_schema(files: Iterable[Path | pq.ParquetFile]) -> pa.Schema:
    schemas = [f.schema_arrow if isinstance(f, pq.ParquetFile) else pq.read_schema(f) for f in files]
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
