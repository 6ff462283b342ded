"""Decoding costs of ``extract deep`` on synthetic 1080x1080 16-bit 5-channel sites (issue 13, fourth round).

Three measurements, each interleaved and summarised by medians:

(a) scale + resize of one site's planes: the two-step path (float stack, ``rescale_to_unit``, ``F.interpolate``)
    against the strip-wise :func:`stratonet.images.transforms.scale_resize_planes`, one torch thread;
(b) whole sites through ``SiteDataset`` (plate scaling, read included): one thread, and
    :class:`stratonet.extract.deep.dataset.ParallelDecode` on two threads;
(c) the model right after a model batch and right after a decode (the cache cost of decoding), bf16, batch 15;

and with ``--load N``, (d): ``extract_deep`` decoding in line, ahead and by default while N busy-looping processes
run, site-loop rates. Example::

    PYTHONPATH=src python benchmarks/speed/bench_decode.py --sites 48 --load 2 --out /tmp/bench_decode
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / _d) for _d in ("speed", "quality")]
from bench_extract import CHANNELS, write_sites  # noqa: E402


def _timed(fn, repeats: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def scale_resize(rows: list[dict], bounds: list[list[float]], repeats: int) -> dict:
    from stratonet.images.transforms import rescale_to_unit, resize_batch, scale_resize_planes

    planes = [tifffile.imread(rows[0][f"Path_{c}"]) for c in CHANNELS]
    torch.set_num_threads(1)

    def two_step():
        buf = np.empty((len(planes),) + planes[0].shape, np.float32)
        for i, p in enumerate(planes):
            np.copyto(buf[i], p, casting="unsafe")
        return resize_batch(rescale_to_unit(buf, bounds=np.array(bounds, np.float32))[None], 224)

    diff = float((two_step() - scale_resize_planes(planes, bounds, 224)).abs().max())
    old, new = [], []
    for _ in range(5):
        old.append(_timed(two_step, repeats) / len(planes) * 1e3)
        new.append(_timed(lambda: scale_resize_planes(planes, bounds, 224), repeats) / len(planes) * 1e3)
    return {"two_step_ms_per_channel": statistics.median(old), "strip_wise_ms_per_channel": statistics.median(new),
            "max_abs_diff": diff}


def site_decode(rows: list[dict], scaling) -> dict:
    from stratonet.extract.deep.dataset import ParallelDecode, Preprocess, SiteDataset, collate_sites

    ds = SiteDataset(rows, Preprocess(CHANNELS, input_size=224, scaling=scaling))
    n = len(rows) * len(CHANNELS)
    one, two = [], []
    for _ in range(3):
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        for i in range(0, len(rows), 3):
            collate_sites([ds[j] for j in range(i, min(i + 3, len(rows)))])
        one.append(n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for _b in ParallelDecode(ds, 3, 2, ahead=False):
            pass
        two.append(n / (time.perf_counter() - t0))
    return {"one_thread_ch_img_per_s": statistics.median(one), "two_threads_ch_img_per_s": statistics.median(two)}


def cache_cost(rows: list[dict], scaling) -> dict:
    from stratonet.extract.deep.dataset import Preprocess, SiteDataset, collate_sites
    from stratonet.extract.deep.inference import Embedder
    from stratonet.models import create_model

    ds = SiteDataset(rows, Preprocess(CHANNELS, input_size=224, scaling=scaling))
    torch.set_num_threads(2)
    emb = Embedder(create_model("stratonet50", seed=0), torch.device("cpu"), batch_size=16, precision="bf16",
                   mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    x = torch.rand(3, len(CHANNELS), 224, 224)
    emb(x)
    plain, after = [], []
    for _ in range(2):
        for i in range(0, len(rows) - 2, 3):
            t0 = time.perf_counter()
            emb(x)
            plain.append(time.perf_counter() - t0)
            b = collate_sites([ds[j] for j in range(i, i + 3)])
            t0 = time.perf_counter()
            emb(b["x"])
            after.append(time.perf_counter() - t0)
    return {"model_ms_after_model": statistics.median(plain) * 1e3,
            "model_ms_after_decode": statistics.median(after) * 1e3}


def under_load(index: Path, out: Path, n_busy: int, rounds: int) -> dict:
    from stratonet.runtime import extract_deep

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n_busy)]
    rates: dict = {}
    ways: dict = {}
    try:
        time.sleep(1.0)
        variants = [("in line", False), ("ahead", True), ("default", None)]
        for r in range(rounds):
            for name, dt in variants[r % 3:] + variants[:r % 3]:
                man = extract_deep(index, out / "deep.parquet", model="stratonet50", precision="bf16",
                                   decode_thread=dt, overwrite=True, progress=False, input_size=224)
                rates.setdefault(name, []).append(man["channel_images_per_s"])
                ways[name] = man["config"]["decode"]
    finally:
        for p in busy:
            p.kill()
    return {"busy_processes": n_busy, "site_loop_ch_img_per_s": rates, "decode": ways}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--load", type=int, default=0, help="busy processes for the under-load comparison (0: skip)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_decode"))
    args = ap.parse_args(argv)
    from stratonet.images.scaling import Scaling, estimate_plate_bounds

    index = write_sites(args.out / "sites", args.sites)
    rows = pd.read_parquet(index).to_dict("records")
    rec = estimate_plate_bounds(rows, CHANNELS)
    scaling = Scaling("plate", CHANNELS, plates=rec["plates"])
    bounds = [rec["plates"]["BENCH"][c] for c in CHANNELS]
    res = {"scale_resize": scale_resize(rows, bounds, args.repeats), "site_decode": site_decode(rows, scaling),
           "cache": cache_cost(rows, scaling)}
    if args.load:
        res["under_load"] = under_load(index, args.out, args.load, args.rounds)
    torch.set_num_threads(2)
    print(json.dumps(res, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_decode.json").write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
