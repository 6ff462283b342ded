"""Ray engine overhead: `extract deep` on one synthetic plate with the local engine and with Ray (1 node, local).

All runs use the same index, model and options in this one process tree; the ratio of their throughputs is the
figure (machines are noisy, so absolute rates are secondary). The Ray cluster is started by this script with all
local CPUs (not timed). ``--engine ray`` is the Ray Data streaming pipeline (decode tasks, a model actor pool);
By default on this CPU-only cluster the model actor decodes its own units (``--ray-decode auto`` = ``actor``);
``--decode-tasks-too`` also times Ray Data with separate decode tasks (``--ray-decode tasks``, the GPU layout), and
``--tasks-too`` the older task-per-shard mode (``--ray-mode tasks``: each shard a task holding the node).
The peak object store use of the cluster is sampled every 0.2 s during the Ray Data run (backpressure check).

    python benchmarks/bench_ray.py --wells 96 --sites 2 --size 540 --model stratonet50 --input-size 224
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
    ap.add_argument("--input-size", type=int, default=224,
                    help="network input side (224 as in earlier runs; 0 = extract deep's default, native size)")
    ap.add_argument("--shards", type=int, default=None, help="--tasks-too: Ray tasks (default: the engine's choice)")
    ap.add_argument("--tasks-too", action="store_true", help="also time --ray-mode tasks (task per shard)")
    ap.add_argument("--decode-tasks-too", action="store_true",
                    help="also time Ray Data with separate decode tasks (--ray-decode tasks)")
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
    if args.input_size:
        common += ["--input-size", args.input_size]
    t0 = time.perf_counter()
    run(common + ["-o", work / "local" / "deep.parquet"])
    t_local = time.perf_counter() - t0
    import threading

    import pandas as pd
    import ray

    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)  # cluster start not timed
    total_store = ray.cluster_resources().get("object_store_memory", 0.0)
    peak = [0.0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            used = total_store - ray.available_resources().get("object_store_memory", total_store)
            peak[0] = max(peak[0], used)
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    run(common + ["-o", work / "ray" / "deep.parquet", "--engine", "ray"])
    t_ray = time.perf_counter() - t0
    stop.set()
    sampler.join()
    t_dtasks = None
    if args.decode_tasks_too:
        t0 = time.perf_counter()
        run(common + ["-o", work / "dtasks" / "deep.parquet", "--engine", "ray", "--ray-decode", "tasks"])
        t_dtasks = time.perf_counter() - t0
    t_tasks = None
    if args.tasks_too:
        t0 = time.perf_counter()
        run(common + ["-o", work / "tasks" / "deep.parquet", "--engine", "ray", "--ray-mode", "tasks"]
            + (["--ray-shards", args.shards] if args.shards else []))
        t_tasks = time.perf_counter() - t0
    ray.shutdown()
    want = pd.read_parquet(work / "local" / "deep.parquet")
    got = pd.read_parquet(work / "ray" / "deep.parquet")
    diff = float((got.select_dtypes("float32") - want.select_dtypes("float32")).abs().max().max())
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(f"{n_images} channel images, {args.model}: local {n_images / t_local:.2f} ch-img/s ({t_local:.1f} s), "
          f"ray data {n_images / t_ray:.2f} ch-img/s ({t_ray:.1f} s); ray data / local throughput = "
          f"{t_local / t_ray:.2f}; tables identical: {got.equals(want)} (max abs diff {diff:g}); peak object store "
          f"use {peak[0] / 2**20:.0f} MiB of {total_store / 2**20:.0f} MiB")
    import json

    for name in ("local", "ray") + (("dtasks",) if t_dtasks is not None else ()):
        man = json.loads((work / name / "deep.manifest.json").read_text())
        print(f"  manifest {name}: pipeline {man['channel_images_per_s']:.2f} ch-img/s; decode: "
              f"{man['config'].get('decode')}")
    if t_dtasks is not None:
        same = pd.read_parquet(work / "dtasks" / "deep.parquet").equals(want)
        print(f"ray data with decode tasks {n_images / t_dtasks:.2f} ch-img/s ({t_dtasks:.1f} s); / local = "
              f"{t_local / t_dtasks:.2f}; tables identical: {same}")
    if t_tasks is not None:
        same = pd.read_parquet(work / "tasks" / "deep.parquet").equals(want)
        print(f"ray tasks (task per shard) {n_images / t_tasks:.2f} ch-img/s ({t_tasks:.1f} s); tasks / local = "
              f"{t_local / t_tasks:.2f}; tables identical: {same}")

if __name__ == "__main__":
    main()
