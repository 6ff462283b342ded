"""Hang check of `extract classical -j 2`: N launches, two at a time, each must finish within its timeout.

The suite keeps a short guard (tests/faults/test_faults.py::test_parallel_classical_never_hangs, 4 launches); this script
is the full check (issue 27: 40 launches, 0 hangs). It writes a 2-site synthetic plate to a temporary folder,
launches ``python -m stratonet extract classical -j 2`` in pairs and reports launches, hangs, failures and the
wall time of each launch.

    PYTHONPATH=src python benchmarks/quality/classical_hang.py --launches 40 --timeout 120
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil


def _spawn(args: list, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stratonet", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_family(run: subprocess.Popen) -> None:
    try:
        family = psutil.Process(run.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    run.kill()
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def run_launches(n: int, timeout: float, base: Path) -> dict:
    """Launch ``n`` classical -j 2 runs two at a time; count hangs (over ``timeout``) and failures."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, "-m", "stratonet", "synth", str(base / "plate"), "--wells", "1", "--sites", "2",
                    "--size", "128", "--seed", "3"], env=env, check=True, capture_output=True)
    load_data = next((base / "plate").rglob("load_data.csv"))
    subprocess.run([sys.executable, "-m", "stratonet", "index", str(load_data), "-o", str(base / "index.parquet")],
                   env=env, check=True, capture_output=True)
    pd.read_parquet(base / "index.parquet").iloc[:2].to_parquet(base / "two.parquet")
    hangs, failures, walls = [], [], []
    for pair in range((n + 1) // 2):
        t0 = time.monotonic()
        runs = [_spawn(["extract", "classical", base / "two.parquet", "-o", base / f"c{pair}_{k}", "--features",
                        "areashape", "-j", "2"], env) for k in range(min(2, n - 2 * pair))]
        for k, run in enumerate(runs):
            launch = 2 * pair + k + 1
            try:
                out, _ = run.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_family(run)
                hangs.append(launch)
                continue
            if run.returncode != 0:
                failures.append({"launch": launch, "rc": run.returncode, "tail": out[-300:]})
        walls.append(round(time.monotonic() - t0, 2))
        print(f"pair {pair + 1}: {walls[-1]} s, hangs so far {hangs}, failures {len(failures)}, load "
              f"{os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    return {"launches": n, "timeout_s": timeout, "hangs": hangs, "failures": failures, "pair_wall_s": walls}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--launches", type=int, default=40)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--json", type=Path, default=None, help="Also write the result here.")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="stratonet_hang_") as tmp:
        res = run_launches(a.launches, a.timeout, Path(tmp))
    res["load_average"] = os.getloadavg()
    print(json.dumps(res, indent=1))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    sys.exit(1 if res["hangs"] or res["failures"] else 0)


if __name__ == "__main__":
    main()
