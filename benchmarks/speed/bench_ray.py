"""Ray engine overhead: `extract deep` on one synthetic plate, the local engine against Ray (1 node, local).

Each timed run is a fresh ``stratonet extract deep`` process, as a user would start it: the local engine, and the
Ray engine connecting to a running single-node cluster (``ray start --head`` with all local CPUs, started by this
script and not timed, as a cluster outlives the commands run on it). Both pay their own Python start-up and imports;
the Ray run also pays connecting to the cluster, starting its model actor and Ray Data's scheduling. Runs alternate
(local, ray, local, ray, ...) so that both see the same machine load; the figure is the ratio of the summed times
(= ratio of throughputs on the same plate), with each round's ratio printed beside it.

``--engine ray`` is the Ray Data pipeline with its defaults (on this CPU-only cluster the model actor decodes its own
units). ``--decode-tasks-too`` also times, once, separate decode tasks (``--ray-decode tasks``, the GPU layout) and
``--tasks-too`` the task-per-shard mode (``--ray-mode tasks``). The object store use of the cluster is sampled every
0.2 s during the Ray Data runs (backpressure check).

    python benchmarks/speed/bench_ray.py --wells 96 --sites 2 --size 540 --model stratonet50 --input-size 224
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wells", type=int, default=24)
    ap.add_argument("--sites", type=int, default=2)
    ap.add_argument("--size", type=int, default=540)
    ap.add_argument("--model", default="stratonet50")
    ap.add_argument("--input-size", type=int, default=224,
                    help="network input side (224 as in earlier runs; 0 = extract deep's default, native size)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating local/ray pairs")
    ap.add_argument("--tasks-too", action="store_true", help="also time --ray-mode tasks (task per shard), once")
    ap.add_argument("--decode-tasks-too", action="store_true",
                    help="also time Ray Data with separate decode tasks (--ray-decode tasks), once")
    args = ap.parse_args()
    env = dict(os.environ, RAY_DISABLE_USAGE_STATS="1")
    stratonet, ray_cli = str(BIN / "stratonet"), str(BIN / "ray")

    work = Path(tempfile.mkdtemp(prefix="stratonet-ray-"))
    subprocess.run([stratonet, "synth", work / "plate", "--wells", str(args.wells), "--sites", str(args.sites),
                    "--size", str(args.size)], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([stratonet, "index", work / "plate" / "load_data.csv", "-o", work / "index.parquet"], check=True,
                   env=env, stdout=subprocess.DEVNULL)
    n_images = args.wells * args.sites * 5
    common = [stratonet, "extract", "deep", str(work / "index.parquet"), "--model", args.model]
    if args.input_size:
        common += ["--input-size", str(args.input_size)]

    def timed(name: str, extra: list[str]) -> float:
        out = work / name / "deep.parquet"
        t0 = time.perf_counter()
        subprocess.run(common + ["-o", str(out)] + extra, check=True, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0

    subprocess.run([ray_cli, "start", "--head", f"--num-cpus={os.cpu_count()}", "--include-dashboard=false",
                    "--disable-usage-stats"], check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    try:
        import ray

        ray.init(address="auto", include_dashboard=False, log_to_driver=False, configure_logging=False)
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
        ray_args = ["--engine", "ray", "--ray-address", "auto"]
        t_local, t_ray = [], []
        for r in range(args.rounds):
            t_local.append(timed(f"local{r}", []))
            t_ray.append(timed(f"ray{r}", ray_args))
        t_dtasks = timed("dtasks", ray_args + ["--ray-decode", "tasks"]) if args.decode_tasks_too else None
        t_tasks = timed("tasks", ray_args + ["--ray-mode", "tasks"]) if args.tasks_too else None
        stop.set()
        sampler.join()
        ray.shutdown()
    finally:
        subprocess.run([ray_cli, "stop"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    import pandas as pd

    want = pd.read_parquet(work / "local0" / "deep.parquet")

    def same(name: str) -> str:
        got = pd.read_parquet(work / name / "deep.parquet")
        diff = float((got.select_dtypes("float32") - want.select_dtypes("float32")).abs().max().max())
        return f"tables identical: {got.equals(want)} (max abs diff {diff:g})"

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{n_images} channel images ({args.wells} wells x {args.sites} sites x 5), {args.model} at "
          f"{args.input_size or 'native'} px; load average after: {load}")
    for r, (a, b) in enumerate(zip(t_local, t_ray)):
        print(f"  round {r}: local {a:.1f} s ({n_images / a:.1f} ch-img/s), ray data {b:.1f} s "
              f"({n_images / b:.1f} ch-img/s); ray / local = {a / b:.2f}; {same(f'ray{r}')}")
    print(f"ray data / local throughput over {args.rounds} round(s) = {sum(t_local) / sum(t_ray):.2f}; peak object "
          f"store use {peak[0] / 2**20:.0f} MiB of {total_store / 2**20:.0f} MiB")
    for name in ("local0", "ray0") + (("dtasks",) if t_dtasks is not None else ()):
        man = json.loads((work / name / "deep.manifest.json").read_text())
        eng = man.get("engine") or {}
        print(f"  manifest {name}: pipeline {man['channel_images_per_s']:.2f} ch-img/s over {man['wall_s']:.1f} s"
              + (f"; actor busy {eng['actor_busy_s']:.1f} s; {eng['units']} unit(s) of {eng['sites_per_unit']} "
                 f"sites" if eng.get("name") == "ray-data" else ""))
    mean_local = sum(t_local) / len(t_local)
    if t_dtasks is not None:
        print(f"ray data with decode tasks {n_images / t_dtasks:.1f} ch-img/s ({t_dtasks:.1f} s); / mean local = "
              f"{mean_local / t_dtasks:.2f}; {same('dtasks')}")
    if t_tasks is not None:
        print(f"ray tasks (task per shard) {n_images / t_tasks:.1f} ch-img/s ({t_tasks:.1f} s); / mean local = "
              f"{mean_local / t_tasks:.2f}; {same('tasks')}")


if __name__ == "__main__":
    main()
