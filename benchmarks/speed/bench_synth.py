"""Synthetic plates: rendering speed, and how separable the lowest dose is on 128 x 128 images.

Speed: CPU seconds (``time.process_time``, one process) and wall seconds per 5-channel site, rendering only and
rendering + writing the five TIFFs. On a shared machine wall time is noisy; CPU time is the steadier figure.

Separability (a proxy, *not* the CNN of the training task): DMSO and every compound at its lowest dose, sites from
many wells (so the plate effect varies), each site downsampled to 128 x 128 and scaled per channel by a
dataset-level percentile (not per image); 8 summary numbers per channel (mean, sd, 50/90/99th percentiles, mean
gradient magnitude, fraction above the dataset median, 2x2-block max mean); a random forest, stratified 5-fold CV.

    PYTHONPATH=src python benchmarks/speed/bench_synth.py --size 1080 --sites-per-class 10
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from skimage.transform import resize
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from stratonet.synth import COMPOUNDS, DOSES_UM, SynthParams, make_platemap, render_site
from stratonet.synth.layout import well_positions
from stratonet.index.schema import well_from_row_col


def bench_speed(size: int, n: int) -> dict:
    params = SynthParams(seed=0, size=size)
    render_site(params, "A01", 1)  # warm-up (illumination cache, imports)
    c0, w0 = time.process_time(), time.perf_counter()
    for s in range(n):
        render_site(params, "B03", s + 1)
    render = {"cpu_s_per_site": (time.process_time() - c0) / n, "wall_s_per_site": (time.perf_counter() - w0) / n}
    from stratonet.runtime import make_plate

    with tempfile.TemporaryDirectory() as tmp:
        wells = max(1, n // 2)
        c0, w0 = time.process_time(), time.perf_counter()
        make_plate(Path(tmp) / "p", wells=wells, sites=2, size=size, progress=False)
        m = wells * 2
        write = {"cpu_s_per_site": (time.process_time() - c0) / m, "wall_s_per_site": (time.perf_counter() - w0) / m}
    return {"size": size, "sites": n, "render_only": render, "make_plate_uncompressed": write}


def summary(img: np.ndarray, med: np.ndarray) -> np.ndarray:
    feats = []
    for c in range(img.shape[0]):
        x = img[c]
        gy, gx = np.gradient(x)
        blocks = x.reshape(64, 2, 64, 2).max(axis=(1, 3))
        feats += [x.mean(), x.std(), *np.percentile(x, [50, 90, 99]), np.hypot(gx, gy).mean(),
                  (x > med[c]).mean(), blocks.mean()]
    return np.asarray(feats)


def bench_separability(size: int, per_class: int, seed: int = 0) -> dict:
    params = SynthParams(seed=seed, size=size)
    wells = [well_from_row_col(r, c) for r, c in well_positions(96)]
    rng = np.random.default_rng(seed)
    low = min(DOSES_UM)
    classes = [("DMSO", 0.0, "control")] + [(c.pert_iname, low, c.moa) for c in COMPOUNDS]
    imgs, labels = [], []
    for name, dose, moa in classes:
        for w in rng.choice(wells, per_class, replace=False):
            img = render_site(params, str(w), 1, treatment=name if dose else None, dose=dose).astype(np.float32)
            imgs.append(resize(img, (5, 128, 128), anti_aliasing=True, preserve_range=True))
            labels.append(moa)
    stack = np.stack(imgs)
    hi = np.percentile(stack, 99.9, axis=(0, 2, 3))[None, :, None, None]  # dataset-level scale per channel
    stack = np.clip(stack / hi, 0, 1)
    med = np.median(stack, axis=(0, 2, 3))
    X = np.stack([summary(x, med) for x in stack])
    y = np.asarray(labels)
    pred = cross_val_predict(RandomForestClassifier(300, random_state=0), X, y,
                             cv=StratifiedKFold(5, shuffle=True, random_state=0))
    recall = {c: float((pred[y == c] == c).mean()) for c in sorted(set(y))}
    return {"size": size, "downsampled_to": 128, "dose_um": low, "sites_per_class": per_class,
            "classes": len(classes), "accuracy": float((pred == y).mean()), "chance": 1 / len(classes),
            "recall": recall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1080)
    ap.add_argument("--speed-sites", type=int, default=10)
    ap.add_argument("--sites-per-class", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    args = ap.parse_args()
    res = {"speed": bench_speed(args.size, args.speed_sites),
           "separability": bench_separability(args.size, args.sites_per_class)}
    print(json.dumps(res, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
