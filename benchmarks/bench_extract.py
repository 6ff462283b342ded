"""Deep-extraction throughput on synthetic 1080x1080 16-bit 5-channel sites, in one run:

(a) I/O ceiling: decode + preprocess alone, through the same DataLoader as extraction;
(b) model only: the same Embedder on in-memory batches;
(c) end to end: ``extract_deep`` from index to Parquet (timed around the whole call, model build included);
(d) naive reference in the thesis's style: one image at a time, per-image skimage resize, no workers.

All figures are channel-images/s. Prints a table and writes JSON. Example::

    PYTHONPATH=src python benchmarks/bench_extract.py --model stratonet50 --sites 16 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
import torch
from torch.utils.data import DataLoader

CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]


def write_sites(folder: Path, n_sites: int, size: int = 1080, seed: int = 0) -> Path:
    """Synthetic uint16 sites (uncompressed TIFF, as Phenix writes them): noisy background plus nucleus-like blobs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:64, :64]
    blob = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / (2 * 8.0 ** 2))
    rows = []
    for s in range(n_sites):
        row = {"Metadata_Plate": "BENCH", "Metadata_Well": f"A{s // 9 + 1:02d}", "Metadata_Site": s % 9 + 1}
        for c, ch in enumerate(CHANNELS):
            p = folder / f"s{s:03d}_{ch}.tiff"
            if not p.exists():
                img = rng.normal(400 + 50 * c, 30, (size, size)).astype(np.float32)
                for cy, cx in rng.integers(0, size - 64, (60, 2)):
                    img[cy: cy + 64, cx: cx + 64] += rng.uniform(2000, 9000) * blob
                tifffile.imwrite(p, np.clip(img, 0, 65535).astype(np.uint16))
            row[f"Path_{ch}"] = str(p)
        rows.append(row)
    index = folder / "index.parquet"
    pd.DataFrame(rows).to_parquet(index)
    return index


def io_ceiling(index: Path, workers: int, batch_size: int, size: int) -> float:
    from stratonet.extract.dataset import Preprocess, SiteDataset, collate_sites
    from stratonet.extract.deep import _worker_init

    rows = pd.read_parquet(index).to_dict("records")
    loader = DataLoader(SiteDataset(rows, Preprocess(CHANNELS, input_size=size)),
                        batch_size=max(1, batch_size // len(CHANNELS)), num_workers=workers,
                        collate_fn=collate_sites, worker_init_fn=_worker_init,
                        prefetch_factor=4 if workers else None)
    t0 = time.perf_counter()
    n = 0
    for batch in loader:
        assert not batch["errors"], batch["errors"]
        n += batch["x"].shape[0] * batch["x"].shape[1]
    return n / (time.perf_counter() - t0)


def model_only(model_name: str, batch_size: int, size: int, n_images: int) -> float:
    from stratonet.extract.engine import Embedder
    from stratonet.models import create_model

    emb = Embedder(create_model(model_name, seed=0), torch.device("cpu"), batch_size=batch_size,
                   mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    x = torch.rand(batch_size // len(CHANNELS), len(CHANNELS), size, size)
    emb(x[:1])  # warm-up
    t0 = time.perf_counter()
    done = 0
    while done < n_images:
        emb(x)
        done += x.shape[0] * x.shape[1]
    return done / (time.perf_counter() - t0)


def end_to_end(index: Path, out: Path, model_name: str, batch_size: int, workers: int | None) -> tuple[float, dict]:
    from stratonet.extract.deep import extract_deep

    t0 = time.perf_counter()
    man = extract_deep(index, out, model=model_name, batch_size=batch_size, workers=workers, overwrite=True,
                       progress=False)
    return man["channel_images"] / (time.perf_counter() - t0), man


def naive(index: Path, model_name: str, n_sites: int, size: int) -> float:
    """Thesis style: per image read, numpy percentile rescale, skimage resize, batch of one."""
    from stratonet.io import read_image
    from stratonet.models import create_model
    from stratonet.preprocess import rescale_percentile, resize

    model = create_model(model_name, seed=0)
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    rows = pd.read_parquet(index).to_dict("records")[:n_sites]
    t0 = time.perf_counter()
    n = 0
    with torch.no_grad():
        for row in rows:
            for ch in CHANNELS:
                img = resize(rescale_percentile(read_image(row[f"Path_{ch}"]).astype(np.float32)), size)
                x = torch.from_numpy(img)[None, None].repeat(1, 3, 1, 1)
                model.forward_taps((x - mean) / std)
                n += 1
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="stratonet50")
    ap.add_argument("--sites", type=int, default=16, help="sites for (a) and (c); 5 channel images each")
    ap.add_argument("--naive-sites", type=int, default=4, help="sites for (d)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None, help="default: the extractor's default")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--out", type=Path, default=Path("/tmp/stratonet-bench"))
    args = ap.parse_args(argv)

    from stratonet.extract.engine import default_workers

    workers = default_workers(torch.device("cpu")) if args.workers is None else args.workers
    index = write_sites(args.out / "sites", args.sites)
    res = {"model": args.model, "sites": args.sites, "channels": len(CHANNELS), "batch_size": args.batch_size,
           "workers": workers, "threads": torch.get_num_threads(), "input_size": args.size,
           "cpu_count": os.cpu_count(), "torch": torch.__version__,
           "cpu": subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("\n")}
    res["a_io_ceiling"] = io_ceiling(index, workers, args.batch_size, args.size)
    res["b_model_only"] = model_only(args.model, args.batch_size, args.size, n_images=2 * args.batch_size)
    res["c_end_to_end"], man = end_to_end(index, args.out / "deep.parquet", args.model, args.batch_size, workers)
    res["c_loop_only"] = man["channel_images_per_s"]
    res["peak_rss_gb_tree"] = man["resources"]["rss_gb_max"]
    res["cpu_pct_avg_e2e"] = man["resources"]["cpu_pct_avg"]
    res["d_naive"] = naive(index, args.model, args.naive_sites, args.size)
    res["ratio_c_over_min_ab"] = res["c_end_to_end"] / min(res["a_io_ceiling"], res["b_model_only"])
    res["ratio_c_over_d"] = res["c_end_to_end"] / res["d_naive"]
    res["max_rss_gb_self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    res["load_avg_1m_end"] = os.getloadavg()[0]
    print(f"model {args.model}, {args.sites} sites x {len(CHANNELS)} channels, 1080x1080 uint16 -> {args.size}, "
          f"batch {args.batch_size}, workers {workers}, threads {res['threads']}")
    for k in ("a_io_ceiling", "b_model_only", "c_end_to_end", "c_loop_only", "d_naive"):
        print(f"  {k:<16} {res[k]:8.2f} channel-images/s")
    print(f"  c / min(a, b)    {res['ratio_c_over_min_ab']:.2f}\n  c / d            {res['ratio_c_over_d']:.2f}")
    print(f"  peak RSS (process tree) {res['peak_rss_gb_tree']:.2f} GB; load average at end {res['load_avg_1m_end']:.1f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"bench_extract_{args.model}.json").write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
