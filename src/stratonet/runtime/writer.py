"""A :class:`~stratonet.runtime.resumable.PartitionedWriter` for wide feature tables (thousands of float32 columns).

Parts are built as Arrow tables straight from the float32 block (pandas' per-column conversion costs seconds per
part at 15,000 columns) and written by one background thread, so writing overlaps inference. At most one part is in
flight, which keeps memory bounded.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stratonet.runtime.resumable import PartitionedWriter, _merge, lean_parquet_options
from stratonet.core.tables import discard_on_error


def wide_frame_to_arrow(df: pd.DataFrame) -> pa.Table:
    """DataFrame -> Arrow table; float32 columns go over as one numpy block, the rest through pandas."""
    dtypes = df.dtypes
    floats = [c for c in df.columns if dtypes[c] == np.float32]
    others = [c for c in df.columns if dtypes[c] != np.float32]
    arrays: dict[str, pa.Array] = {}
    if others:
        t = pa.Table.from_pandas(df[others], preserve_index=False)
        arrays.update({name: t.column(i) for i, name in enumerate(t.column_names)})
    if floats:
        block = np.ascontiguousarray(df[floats].to_numpy(dtype=np.float32).T)  # one row per feature
        arrays.update({name: pa.array(block[j]) for j, name in enumerate(floats)})
    names = [str(c) for c in df.columns]
    return pa.Table.from_arrays([arrays[c] for c in df.columns], names=names)


class WideTableWriter(PartitionedWriter):
    """Same contract as :class:`PartitionedWriter` (parts, resume, finalize), faster for wide tables.

    ``metadata`` (Parquet schema metadata, e.g. the provenance) is stamped on every part and on the final file, so
    finalising a single part is a rename rather than a rewrite.
    """

    def __init__(self, *args, metadata: dict[bytes, bytes] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.metadata = {**(metadata or {}), **self._schema_metadata()} or None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-writer")
        self._pending: Future | None = None
        parts = self._part_files()
        self._next = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0

    def wait(self) -> None:
        """Block until the part in flight is on disk (re-raises its error)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def flush(self) -> None:
        """Hand the buffered rows to the writer thread as one part (atomic write)."""
        if not self._buffer:
            return
        df = pd.concat(self._buffer, ignore_index=True) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer, self._buffered = [], 0
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self.wait()
        part = self.parts_dir / f"part-{self._next:05d}.parquet"
        self._next += 1
        self._pending = self._pool.submit(_write_part, df, part, self.metadata)

    def finalize(self):
        """Merge the existing output and the parts into the final file (streamed) and remove the parts."""
        self.flush()
        self.wait()
        self._pool.shutdown(wait=True)
        parts = self._part_files()
        if not parts:
            self._remove_parts_dir()
            return self.out
        if len(parts) == 1 and not self.out.exists():
            parts[0].replace(self.out)  # already stamped: nothing to merge
        else:
            sources = ([self.out] if self.out.exists() else []) + parts
            _merge(sources, self.out, self.key_columns, self.metadata)  # drops keys written twice
            for p in parts:
                p.unlink()
        self._remove_parts_dir()
        return self.out


def _write_part(df: pd.DataFrame, part, metadata: dict | None) -> None:
    tmp = part.with_suffix(".tmp")
    table = wide_frame_to_arrow(df)
    if metadata:
        table = table.replace_schema_metadata(metadata)
    with discard_on_error(tmp, part):  # a full disk leaves no half-written part behind
        pq.write_table(table, tmp, **lean_parquet_options(table.schema))
        tmp.replace(part)
