"""Core-seconds per 5-channel 1080x1080 site for the classical path: full default feature set and per group.

Core-seconds are this process's CPU time (time.process_time), robust to other jobs sharing the machine;
measurements run single-threaded in one process. Two kinds of site:

- real: the JUMP FOV (DNA, RNA, AGP are real; ER and Mito reuse AGP and RNA so that 5 channels are measured);
- synthetic: a 1080x1080 site drawn here (stratonet.synth had not landed), ~200 cells with textured nuclei
  and cytoplasm in 5 channels, uint16-like range.

Run: PYTHONPATH=src /work/venv/bin/python benchmarks/speed/bench_classical.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from stratonet.extract.classical.measure import GROUPS, MeasureParams, measure_site
from stratonet.extract.classical.segment import segment_site
from stratonet.extract.classical.run import scale_to_unit
from stratonet.images.io import read_image

CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]
FOV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cytodataframe_fov" / "JUMP_plate_BR00117006"


def synthetic_site(size: int = 1080, n_cells: int = 200, seed: int = 0) -> np.ndarray:
    """(5, size, size) float image in [0, 1] with blob nuclei and irregular textured cytoplasm."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    centers = rng.uniform(30, size - 30, (n_cells, 2))
    nuc = np.zeros((size, size), np.float32)
    cyto = np.zeros((size, size), np.float32)
    for cy, cx in centers:
        a, b = rng.uniform(9, 15, 2)
        th = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(th) + dy * np.sin(th)) / a
        v = (-dx * np.sin(th) + dy * np.cos(th)) / b
        nuc = np.maximum(nuc, np.clip(1.2 - (u * u + v * v), 0, 1) * rng.uniform(0.5, 1.0))
        r2 = (dx * dx + dy * dy) / rng.uniform(28, 40) ** 2
        cyto = np.maximum(cyto, np.exp(-r2) * rng.uniform(0.4, 0.9))
    texture = ndi.gaussian_filter(rng.random((size, size)).astype(np.float32), 1.5)
    puncta = ndi.gaussian_filter((rng.random((size, size)) > 0.995).astype(np.float32), 1.0) * 8
    bg = 0.02
    chans = {
        "DNA": nuc * (0.7 + 0.6 * texture),
        "ER": cyto * (0.6 + 0.8 * texture),
        "RNA": cyto * 0.5 + nuc * 0.3 + puncta * cyto,
        "AGP": ndi.gaussian_gradient_magnitude(cyto, 2) * 20 + cyto * 0.3,
        "Mito": cyto * (0.3 + puncta),
    }
    img = np.stack([chans[c] for c in CHANNELS]) * 0.25 + bg
    img += rng.normal(0, 0.003, img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def real_site() -> np.ndarray:
    d = FOV / "images" / "orig"
    raw = {c: read_image(d / f"r01c01f01p01-{k}sk1fk1fl1.tiff") for c, k in
           {"DNA": "ch5", "RNA": "ch3", "AGP": "ch2"}.items()}
    raw["ER"], raw["Mito"] = raw["AGP"], raw["RNA"]
    return scale_to_unit(np.stack([raw[c] for c in CHANNELS]).astype(np.float32))


def bench(img: np.ndarray, label: str) -> None:
    params = MeasureParams()
    t = time.process_time()
    masks = segment_site(img[0], img[[1, 3]].mean(axis=0))
    seg = time.process_time() - t
    n = int(masks["Cells"].max())
    # JIT warm-up of the numba kernels on a corner (a once-per-process cost, reported separately).
    t = time.process_time()
    measure_site(img[:, :256, :256], CHANNELS, {k: v[:256, :256] for k, v in masks.items()}, None, params)
    warm = time.process_time() - t
    print(f"\n## {label}: {img.shape[1]}x{img.shape[2]}, {len(CHANNELS)} channels, {n} cells")
    print("| step | core-s per site | columns |")
    print("|---|---|---|")
    print(f"| segmentation | {seg:.2f} | |")
    for g in GROUPS:
        t = time.process_time()
        df = measure_site(img, CHANNELS, masks, [g], params)
        print(f"| {g} | {time.process_time() - t:.2f} | {df.shape[1]} |")
    t = time.process_time()
    df = measure_site(img, CHANNELS, masks, None, params)
    full = time.process_time() - t
    print(f"| **full default set (measure)** | {full:.2f} | {df.shape[1]} |")
    print(f"| **segmentation + full set** | {seg + full:.2f} | |")
    print(f"| (one-off numba JIT warm-up per process) | {warm:.2f} | |")


if __name__ == "__main__":
    bench(synthetic_site(), "synthetic site")
    bench(real_site(), "real JUMP FOV (ER, Mito = copies of AGP, RNA)")
