"""Writing and merging Parquet parts of a wide deep-feature table (15,360 float32 columns, as StratoNet-50 on a
5-channel site gives).

Times, in one process:
(a) writing one part with pyarrow's default options against the writer's (`lean_parquet_options`: dictionaries
    and statistics for the metadata columns only), ``--rows`` rows per part, ``--repeats`` alternated rounds;
(b) ``WideTableWriter.finalize`` merging ``--parts`` parts of ``--part-rows`` rows into one table.

    PYTHONPATH=src python benchmarks/speed/bench_parquet_parts.py --out /tmp/bench_parts
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from stratonet.runtime.writer import WideTableWriter, _write_part, wide_frame_to_arrow
from stratonet.runtime.resumable import lean_parquet_options

KEYS = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]


def wide_frame(rows: int, features: int, well: str, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.random((rows, features), dtype=np.float32), columns=[f"f{i:05d}" for i in range(features)])
    df.insert(0, "Metadata_Site", [str(i) for i in range(rows)])
    df.insert(0, "Metadata_Well", well)
    df.insert(0, "Metadata_Plate", "P1")
    return df


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_parts"))
    ap.add_argument("--features", type=int, default=15360)
    ap.add_argument("--rows", type=int, default=256, help="(a): rows per part")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parts", type=int, default=8, help="(b): parts to merge")
    ap.add_argument("--part-rows", type=int, default=24, help="(b): rows per part")
    args = ap.parse_args(argv)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)

    table = wide_frame_to_arrow(wide_frame(args.rows, args.features, "A01"))
    times: dict[str, list[float]] = {"default": [], "lean": []}
    for _ in range(args.repeats):
        for name, opts in (("default", {}), ("lean", lean_parquet_options(table.schema))):
            t0 = time.perf_counter()
            pq.write_table(table, args.out / f"{name}.parquet", **opts)
            times[name].append(time.perf_counter() - t0)
    same = pq.read_table(args.out / "default.parquet").equals(pq.read_table(args.out / "lean.parquet"))
    print(f"(a) one part of {args.rows} rows x {args.features} float32 columns, write s (min / median / max of "
          f"{args.repeats}):")
    for name, ts in times.items():
        print(f"    {name:8s} {min(ts):.3f} / {float(np.median(ts)):.3f} / {max(ts):.3f}")
    print(f"    tables read back equal: {same}")

    out = args.out / "merged" / "deep.parquet"
    parts = out.with_name(out.name + ".parts")
    parts.mkdir(parents=True)
    for k in range(args.parts):
        _write_part(wide_frame(args.part_rows, args.features, f"W{k:02d}", seed=k), parts / f"part-{k:05d}.parquet",
                    {b"bench": b"1"})
    writer = WideTableWriter(out, key_columns=KEYS, metadata={b"bench": b"1"})
    t0 = time.perf_counter()
    writer.finalize()
    merge_s = time.perf_counter() - t0
    pf = pq.ParquetFile(out)
    print(f"(b) finalize: {args.parts} parts of {args.part_rows} rows -> {pf.metadata.num_rows} rows in "
          f"{pf.num_row_groups} row group(s): {merge_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
