"""Extraction speed of pretrained EfficientNet-Lite0 against StratoNet-50, measured in one run on this machine.

Both go through ``extract_deep`` end to end (index -> Parquet, whole mode, 224 px, batch 64, default workers) on
the same BBBC013 sites, alternating A, B, A, B so that load changes on a shared machine hit both alike; plus the
model alone on an in-memory batch (BN folded, ``inference_mode``), also alternating.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/speed/bench_lite0_vs_sn50.py --sites 32 --repeats 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / _d) for _d in ("speed", "quality")]
from bbbc013_targets import bbbc013_index  # noqa: E402

# both at 224 px, as the model-only part (whole fields would otherwise go in at their native 640 px)
CONFIGS = {"efficientnet_lite0": dict(weights="efficientnet_lite0.in1k", input_size=224),
           "stratonet50": dict(model="stratonet50", input_size=224)}


def model_only(batch: int = 32, reps: int = 3) -> dict[str, float]:
    """Channel images per second of the model alone, alternating the two models ``reps`` times."""
    from stratonet.extract.deep.run import build_model
    from stratonet.extract.deep.inference import Embedder

    embedders = {}
    for name, kw in CONFIGS.items():
        net, _, _ = build_model(kw.get("model"), kw.get("weights"), seed=0)
        embedders[name] = Embedder(net, torch.device("cpu"), batch_size=batch, mean=[0.5] * 3, std=[0.5] * 3)
    x = torch.rand(batch, 1, 224, 224)
    times: dict[str, list[float]] = {n: [] for n in embedders}
    for name, e in embedders.items():
        e(x[:4])  # warm-up
    for _ in range(reps):
        for name, e in embedders.items():
            t = time.perf_counter()
            e(x)
            times[name].append(time.perf_counter() - t)
    return {n: batch / float(np.median(t)) for n, t in times.items()}


def end_to_end(sites: int, repeats: int) -> dict[str, float]:
    """Channel images per second of ``extract_deep`` (whole call), alternating the two models."""
    from stratonet.runtime import extract_deep

    index = bbbc013_index().head(sites)
    rates: dict[str, list[float]] = {n: [] for n in CONFIGS}
    tmp = Path(tempfile.mkdtemp(prefix="bench_lite0_"))
    try:
        for r in range(repeats):
            for name, kw in CONFIGS.items():
                out = tmp / f"{name}_{r}.parquet"
                t = time.perf_counter()
                extract_deep(index, out, progress=False, **kw)
                rates[name].append(sites * 2 / (time.perf_counter() - t))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {n: float(np.median(v)) for n, v in rates.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sites", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    m = model_only()
    print(f"model only (channel-images/s): lite0 {m['efficientnet_lite0']:.1f}, stratonet50 {m['stratonet50']:.1f}, "
          f"ratio lite0/sn50 {m['efficientnet_lite0'] / m['stratonet50']:.2f}", flush=True)
    e = end_to_end(args.sites, args.repeats)
    print(f"extract_deep end to end (channel-images/s): lite0 {e['efficientnet_lite0']:.1f}, stratonet50 "
          f"{e['stratonet50']:.1f}, ratio lite0/sn50 {e['efficientnet_lite0'] / e['stratonet50']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
