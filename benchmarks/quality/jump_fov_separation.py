"""Real JUMP fields of view: how well do deep features tell two FOVs (two plates, two cell lines) apart?

Each FOV (CPJUMP1 BR00117006 A01 and pediatric BR00143976 C03 s3; channels DNA, RNA, AGP, the ones both have) is cut
into a centred 4 x 4 grid of native-resolution 224 px tiles; every tile is one feature vector (its three channels'
taps concatenated). Per feature set we report, over the 32 tiles:

- the silhouette score of the FOV labels (cosine distance on standardised features; -1..1, higher = more apart);
- the ratio of the mean across-FOV distance to the mean within-FOV distance;
- the fraction of tiles whose nearest neighbour is in the same FOV.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/quality/jump_fov_separation.py --weights none:stratonet50 \\
        --weights efficientnet_lite0.in1k --scaling image --scaling plate --scaling bitdepth
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

FOV_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cytodataframe_fov"
CHANNELS = ["DNA", "RNA", "AGP"]


def fov_index(root: Path = FOV_ROOT) -> pd.DataFrame:
    """The two FOVs as a two-plate index (DNA, RNA, AGP)."""
    jump = root / "JUMP_plate_BR00117006" / "images" / "orig"
    ped = root / "pediatric_cancer_atlas_profiling" / "images" / "orig"
    return pd.DataFrame([
        {"Metadata_Plate": "BR00117006", "Metadata_Well": "A01", "Metadata_Site": 1,
         "Path_DNA": str(jump / "r01c01f01p01-ch5sk1fk1fl1.tiff"), "Path_RNA": str(jump / "r01c01f01p01-ch3sk1fk1fl1.tiff"),
         "Path_AGP": str(jump / "r01c01f01p01-ch2sk1fk1fl1.tiff")},
        {"Metadata_Plate": "BR00143976", "Metadata_Well": "C03", "Metadata_Site": 3,
         "Path_DNA": str(ped / "r03c03f03p01-ch5sk1fk1fl1.tiff"), "Path_RNA": str(ped / "r03c03f03p01-ch6sk1fk1fl1.tiff"),
         "Path_AGP": str(ped / "r03c03f03p01-ch3sk1fk1fl1.tiff")},
    ])


def tile_features(index: pd.DataFrame, weights: str | None, model: str | None, scaling: str,
                  out_dir: Path, tile: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile features ``(n_tiles, features)`` and the FOV label of each tile."""
    from stratonet.extract.deep.dataset import Preprocess, SiteDataset
    from stratonet.extract.deep.run import build_model
    from stratonet.extract.deep.inference import Embedder
    from stratonet.images.scaling import ScalingSpec, resolve_scaling

    net, card, _ = build_model(model, weights, seed=0)
    norm = card.get("normalization") or {}
    rows = index.to_dict("records")
    scale = resolve_scaling(ScalingSpec(scaling), rows, CHANNELS, out_dir / f"fov_{scaling}.parquet")
    prep = Preprocess(channels=CHANNELS, mode="tiles", input_size=tile, tile_size=tile,
                      scaling=None if scaling == "image" else scale)
    embed = Embedder(net, __import__("torch").device("cpu"), batch_size=48,
                     mean=norm.get("mean", [0.485, 0.456, 0.406]), std=norm.get("std", [0.229, 0.224, 0.225]))
    feats, labels = [], []
    for i, item in enumerate(SiteDataset(rows, prep)):
        if item["error"]:
            raise RuntimeError(item["error"])
        f = embed(item["x"])  # (tiles, channels, dims)
        feats.append(f.reshape(f.shape[0], -1))
        labels += [i] * f.shape[0]
    return np.concatenate(feats), np.asarray(labels)


def separation(x: np.ndarray, labels: np.ndarray) -> dict:
    """Silhouette (cosine, standardised features), across/within distance ratio and same-FOV 1-NN fraction."""
    from sklearn.metrics import pairwise_distances, silhouette_score

    x = x[:, x.std(axis=0) > 0]
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    d = pairwise_distances(z, metric="cosine")
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(z), dtype=bool)
    np.fill_diagonal(d, np.inf)
    nn_same = float(np.mean(same[np.arange(len(z)), d.argmin(axis=1)]))
    np.fill_diagonal(d, 0.0)
    return {"silhouette": float(silhouette_score(z, labels, metric="cosine")),
            "across_within": float(d[~same].mean() / d[same & off].mean()), "nn_same_fov": nn_same}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", action="append", required=True,
                    help="weights name or checkpoint, or none:<model> for an untrained network")
    ap.add_argument("--scaling", action="append", default=None)
    ap.add_argument("--out", type=Path, default=Path("/tmp/jump_fov_sep"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    index = fov_index()
    print("| weights | scaling | silhouette | across/within distance | same-FOV 1-NN |\n|---|---|---|---|---|")
    for w in args.weights:
        model, weights = (w.split(":", 1)[1], None) if w.startswith("none:") else (None, w)
        for scaling in args.scaling or ["image", "plate", "bitdepth"]:
            x, lab = tile_features(index, weights, model, scaling, args.out)
            s = separation(x, lab)
            print(f"| {w} | {scaling} | {s['silhouette']:.3f} | {s['across_within']:.2f} | {s['nn_same_fov']:.2f} |",
                  flush=True)
            with open(args.out / "results.jsonl", "a") as fh:
                fh.write(json.dumps({"weights": w, "scaling": scaling, **s}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
