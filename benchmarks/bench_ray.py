"""Ray engine overhead: `extract deep` on one synthetic plate with the local engine and with Ray (1 node, local).

Both runs use the same index, model and options in this one process tree; the ratio of their throughputs is the
figure (machines are noisy, so absolute rates are secondary). The Ray cluster is started by this script with all
local CPUs; each shard is a Ray task holding the whole node (as many threads as a local run), one at a time here.

    python benchmarks/bench_ray.py --wells 24 --sites 2 --size 540 --model stratonet50
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wells", type=int, default=24)
    ap.add_argument("--sites", type=int, default=2)
    ap.add_argument("--size", type=int, default=540)
    ap.add_argument("--model", default="stratonet50")
    ap.add_argument("--shards", type=int, default=None, help="Ray tasks (default: the engine's own choice)")
    args = ap.parse_args()
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    from stratonet.cli import main as cli

    def run(argv):
        try:
            cli([str(a) for a in argv])
        except SystemExit as exc:
            if exc.code:
                raise

    work = Path(tempfile.mkdtemp(prefix="stratonet-ray-"))
    run(["synth", work / "plate", "--wells", args.wells, "--sites", args.sites, "--size", args.size])
    run(["index", work / "plate" / "load_data.csv", "-o", work / "index.parquet"])
    n_images = args.wells * args.sites * 5
    common = ["extract", "deep", work / "index.parquet", "--model", args.model]
    t0 = time.perf_counter()
    run(common + ["-o", work / "local" / "deep.parquet"])
    t_local = time.perf_counter() - t0
    import ray

    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)  # cluster start not timed
    t0 = time.perf_counter()
    run(common + ["-o", work / "ray" / "deep.parquet", "--engine", "ray"]
        + (["--ray-shards", args.shards] if args.shards else []))
    t_ray = time.perf_counter() - t0
    ray.shutdown()
    import pandas as pd

    same = pd.read_parquet(work / "local" / "deep.parquet").equals(pd.read_parquet(work / "ray" / "deep.parquet"))
    print(f"{n_images} channel images, {args.model}: local {n_images / t_local:.2f} ch-img/s ({t_local:.1f} s), "
          f"ray {n_images / t_ray:.2f} ch-img/s ({t_ray:.1f} s); ray / local throughput = {t_local / t_ray:.2f}; "
          f"tables identical: {same}")


if __name__ == "__main__":
    main()
