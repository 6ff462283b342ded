"""Out-of-core profiling: ``stratonet profile --out-of-core`` on a synthetic single-cell table in Parquet shards.

Writes ``--rows`` cells x ``--features`` float32 features over 4 plates x 384 wells x 9 sites as shards, runs the
CLI (well median, mad_robustize vs negcon per plate, variance + correlation + drop-NA selection) in a child process
and reports its wall time and peak RSS (``ru_maxrss`` of the child). ``--pycytominer-rows`` also runs pycytominer's
aggregate -> normalize -> feature_select in memory on a table of that many rows, and the out-of-core CLI on the same
rows, for a time ratio measured in one run. The shards are deleted afterwards unless ``--keep``.

    python benchmarks/speed/bench_profile_ooc.py --rows 10000000 --pycytominer-rows 1000000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

WELLS = [f"{r}{c:02d}" for r in "ABCDEFGHIJKLMNOP" for c in range(1, 25)]


def write_cells(folder: Path, rows: int, features: int, rows_per_shard: int = 500_000, seed: int = 0) -> int:
    """Synthetic cells in Parquet shards; columns 1 and 2 of each plate are DMSO (negcon). Returns bytes on disk."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    names = [f"Cells_feature_{j:03d}" for j in range(features)]
    for s, start in enumerate(range(0, rows, rows_per_shard)):
        n = min(rows_per_shard, rows - start)
        well = rng.integers(0, len(WELLS), n)
        wells = np.array(WELLS)[well]
        ctrl = np.char.endswith(wells, "01") | np.char.endswith(wells, "02")
        cols = {
            "Metadata_Plate": pa.array(np.array(["BR01", "BR02", "BR03", "BR04"])[rng.integers(0, 4, n)]),
            "Metadata_Well": pa.array(wells),
            "Metadata_Site": pa.array(rng.integers(1, 10, n)),
            "Metadata_pert_iname": pa.array(np.where(ctrl, "DMSO", np.char.add("cpd_", wells))),
            "Metadata_control_type": pa.array(np.where(ctrl, "negcon", "trt")),
        }
        X = rng.standard_normal((features, n), dtype=np.float32)
        X[: features // 10] += (well % 7).astype(np.float32)  # some real well-to-well signal
        for j, name in enumerate(names):
            cols[name] = pa.array(X[j])
        pq.write_table(pa.table(cols), folder / f"part-{s:05d}.parquet")
    return sum(f.stat().st_size for f in folder.glob("*.parquet"))


CLI = """
import resource, sys, time
from stratonet.cli import main
t0 = time.perf_counter()
try:
    main(sys.argv[1:])
except SystemExit as exc:
    if exc.code:
        raise
print(f"{time.perf_counter() - t0:.2f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.3f}")
"""


def run_cli(src: Path, out: Path, engine: str = "--out-of-core") -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of ``stratonet profile --out-of-core`` (or ``--in-memory``) in its own process."""
    cmd = [sys.executable, "-c", CLI, "profile", str(src), "-o", str(out), engine,
           "--select", "variance_threshold,correlation_threshold,drop_na_columns"]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    t, rss = res.stdout.strip().splitlines()[-1].split()
    return float(t), float(rss)


PYCYTOMINER = """
import resource, sys, time
import pandas as pd
from pycytominer import aggregate, normalize, feature_select
t0 = time.perf_counter()
df = pd.read_parquet(sys.argv[1])
feats = [c for c in df.columns if not c.startswith("Metadata_")]
wells = aggregate(df, strata=["Metadata_Plate", "Metadata_Well"], features=feats, operation="median")
meta = df.drop_duplicates(["Metadata_Plate", "Metadata_Well"])[["Metadata_Plate", "Metadata_Well", "Metadata_control_type"]]
wells = wells.merge(meta, on=["Metadata_Plate", "Metadata_Well"])
norm = normalize(wells, features=feats, meta_features=["Metadata_Plate", "Metadata_Well", "Metadata_control_type"],
                 samples="Metadata_control_type == 'negcon'", method="mad_robustize")
sel = feature_select(norm, features=feats, operation=["variance_threshold", "correlation_threshold", "drop_na_columns"])
print(f"{time.perf_counter() - t0:.2f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.3f} {sel.shape[1]}")
"""


def run_pycytominer(src: Path) -> tuple[float, float]:
    res = subprocess.run([sys.executable, "-c", PYCYTOMINER, str(src)], check=True, capture_output=True, text=True)
    t, rss, _ = res.stdout.split()
    return float(t), float(rss)


def compare_profiles(a: Path, b: Path) -> str:
    """The out-of-core and in-memory profile tables side by side: same rows, same features, largest difference."""
    import pandas as pd

    keys = ["Metadata_Plate", "Metadata_Well"]
    x = pd.read_parquet(a).sort_values(keys).reset_index(drop=True)
    y = pd.read_parquet(b).sort_values(keys).reset_index(drop=True)
    fx = [c for c in x.columns if not c.startswith("Metadata_")]
    fy = [c for c in y.columns if not c.startswith("Metadata_")]
    if len(x) != len(y) or fx != fy:
        return f"DIFFER: {len(x)} vs {len(y)} rows, {len(fx)} vs {len(fy)} features"
    diff = (x[fx].astype("float64") - y[fy].astype("float64")).abs().to_numpy()
    return f"same {len(x)} rows and {len(fx)} features; max abs diff {float(diff.max()):.3g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--features", type=int, default=300)
    ap.add_argument("--pycytominer-rows", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="stratonet-ooc-"))
    try:
        if args.pycytominer_rows:
            small = work / "small"
            write_cells(small, args.pycytominer_rows, args.features)
            t_ooc, rss_ooc = run_cli(small, work / "small_profiles.parquet")
            t_mem, rss_mem = run_cli(small, work / "small_profiles_mem.parquet", "--in-memory")
            print(f"{args.pycytominer_rows:,} cells: in-memory CLI {t_mem:.1f} s, peak RSS {rss_mem:.2f} GB | "
                  + compare_profiles(work / "small_profiles.parquet", work / "small_profiles_mem.parquet"))
            t_pcm, rss_pcm = run_pycytominer(small)
            print(f"{args.pycytominer_rows:,} cells x {args.features}: out-of-core CLI {t_ooc:.1f} s, peak RSS "
                  f"{rss_ooc:.2f} GB | pycytominer in memory {t_pcm:.1f} s, peak RSS {rss_pcm:.2f} GB | "
                  f"time ratio pycytominer / out-of-core {t_pcm / t_ooc:.2f}")
            shutil.rmtree(small)
        big = work / "big"
        t0 = time.perf_counter()
        disk = write_cells(big, args.rows, args.features)
        raw = args.rows * args.features * 4
        print(f"wrote {args.rows:,} cells x {args.features} float32 features ({raw / 1e9:.1f} GB uncompressed "
              f"features, {disk / 1e9:.1f} GB Parquet on disk) in {time.perf_counter() - t0:.0f} s")
        t, rss = run_cli(big, work / "big_profiles.parquet")
        print(f"out-of-core profile (well median + mad_robustize + selection): {t:.1f} s, peak RSS {rss:.2f} GB")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
