"""Benchmarks: `evaluate retrieval` on 10,000 x 1,000 profiles and `evaluate classify` (10-fold CV, four
classifiers) on 5,000 x 500, each through the CLI in a child process whose peak RSS is read from getrusage.

Run from the repository root::

    PYTHONPATH=src /work/venv/bin/python benchmarks/speed/bench_evaluate.py [retrieval|classify|all]

Synthetic profiles: 900 treatments x ~10 replicates + 1,000 DMSO wells (retrieval), 10 balanced-ish classes
(classify), Gaussian features with a class-dependent shift, so that the metrics are neither trivial nor zero.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def make_retrieval(path: Path, n: int = 10000, d: int = 1000, n_dmso: int = 1000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n_trt = n - n_dmso
    cpd = np.arange(n_trt) % 900
    moa = cpd % 30
    centers = rng.normal(size=(30, d)).astype(np.float32) * 0.3
    own = rng.normal(size=(900, d)).astype(np.float32) * 0.3
    X = np.vstack([centers[moa] + own[cpd] + rng.normal(size=(n_trt, d)).astype(np.float32),
                   rng.normal(size=(n_dmso, d)).astype(np.float32)])
    meta = pd.DataFrame({
        "Metadata_Plate": [f"P{i % 40}" for i in range(n)],
        "Metadata_pert_iname": [f"cpd{c}" for c in cpd] + ["DMSO"] * n_dmso,
        "Metadata_moa": [f"moa{m}" for m in moa] + ["control"] * n_dmso,
        "Metadata_control_type": ["trt"] * n_trt + ["negcon"] * n_dmso,
    })
    feats = pd.DataFrame(X, columns=[f"f{i:04d}" for i in range(d)])
    pd.concat([meta, feats], axis=1).to_parquet(path)


def make_classify(path: Path, n: int = 5000, d: int = 500, k: int = 10, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=np.linspace(2, 1, k) / np.linspace(2, 1, k).sum())
    centers = rng.normal(size=(k, d)).astype(np.float32) * 0.15
    X = centers[y] + rng.normal(size=(n, d)).astype(np.float32)
    meta = pd.DataFrame({"Metadata_Plate": [f"P{i % 20}" for i in range(n)], "Metadata_moa": [f"moa{c}" for c in y]})
    pd.concat([meta, pd.DataFrame(X, columns=[f"f{i:03d}" for i in range(d)])], axis=1).to_parquet(path)


def timed_cli(args: list[str]) -> dict:
    """Run the CLI in a child; wall seconds and the child's peak RSS (GB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "stratonet", *args], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr[-2000:]}")
    return {"wall_s": round(wall, 1), "peak_rss_gb": round(max(peak, before) / 2**20, 2), "stdout": proc.stdout[-800:]}


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    work = ROOT / "benchmarks" / "_work"
    work.mkdir(exist_ok=True)
    results = {}
    if which in ("retrieval", "all"):
        src = work / "retrieval_10000x1000.parquet"
        make_retrieval(src)
        results["retrieval_10000x1000"] = timed_cli(["evaluate", "retrieval", str(src), "-o", str(work / "run")])
        print(json.dumps(results["retrieval_10000x1000"], indent=1), flush=True)
    if which in ("classify", "all"):
        src = work / "classify_5000x500.parquet"
        make_classify(src)
        results["classify_5000x500"] = timed_cli(["evaluate", "classify", str(src), "-o", str(work / "run"),
                                                  "--cv", "10"])
        print(json.dumps(results["classify_5000x500"], indent=1), flush=True)


if __name__ == "__main__":
    main()
