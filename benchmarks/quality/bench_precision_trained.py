"""bf16 against fp32 on *trained* weights (issue 13): per-image and per-feature cosine on the real JUMP FOV.

Trains a registered ResNet-family model for a few epochs with ``stratonet train classifier`` on synthetic shapes
(the only ResNet weights that can be made offline), then embeds the 27 channel images of the real FOV
(``tests/models/test_precision.py::fov_tiles``) in fp32 and bf16 through the extraction Embedder, and compares them with
the test's ``agreement``. Also the shipped EfficientNet-Lite0 ImageNet weights, and the model-only speed of each in
both precisions (interleaved rounds, medians). Example::

    PYTHONPATH=src:tests python benchmarks/quality/bench_precision_trained.py --model stratonet50 --epochs 3 --out /tmp/prec/trained
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))


def embed_both(net, tiles, mean, std, rounds: int = 3) -> dict:
    from stratonet.extract.deep.inference import Embedder

    out, speed = {}, {}
    embs = {p: Embedder(net, torch.device("cpu"), batch_size=16, precision=p, mean=mean, std=std)
            for p in ("fp32", "bf16")}
    for p, emb in embs.items():
        out[p] = emb(tiles)[:, 0]
    x = tiles[:16].reshape(1, 16, *tiles.shape[-2:])
    for _ in range(rounds):
        for p, emb in embs.items():
            t0 = time.perf_counter()
            emb(x)
            speed.setdefault(p, []).append(16 / (time.perf_counter() - t0))
    return out, {p: float(np.median(v)) for p, v in speed.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="stratonet50")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=12)
    ap.add_argument("--out", type=Path, default=Path("/tmp/prec/trained"))
    args = ap.parse_args(argv)

    from conftest import JUMP_FOV
    from test_precision import agreement, fov_tiles
    from train_fixtures import make_image_folder

    from stratonet.cli import main as cli_main
    from stratonet.models import load_checkpoint
    from stratonet.models.pretrained import resolve_weights

    res: dict = {"load_avg_start": os.getloadavg(), "torch": torch.__version__}
    shapes = make_image_folder(args.out / "shapes", args.per_class, size=96)
    t0 = time.perf_counter()
    try:
        cli_main(["train", "classifier", str(shapes), "-o", str(args.out / "run"), "--model", args.model,
                  "--epochs", str(args.epochs), "--resize", "80", "--crop", "64", "--batch-size", "16",
                  "--plateau-patience", "0", "--norm", "imagenet", "--precision", "fp32"])
    except SystemExit:
        pass
    res["train_s"] = time.perf_counter() - t0
    run = args.out / "run" / "train" / f"classifier_{args.model}"
    metrics = json.loads((run / "metrics.json").read_text())
    res["trained"] = {"model": args.model, "epochs": args.epochs, "val_top1": metrics["top1"],
                      "chance": metrics["chance"]}
    net, card = load_checkpoint(run / "best")
    fresh = __import__("stratonet.models", fromlist=["create_model"]).create_model(args.model, seed=0)
    moved = [float((p - q).norm() / q.norm()) for (n, p), (_, q) in
             zip(net.state_dict().items(), fresh.state_dict().items()) if p.dtype.is_floating_point and q.norm() > 0]
    res["trained"]["median_relative_weight_change"] = float(np.median(moved))
    tiles = fov_tiles(JUMP_FOV)
    imagenet = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    feats, speed = embed_both(net.eval(), tiles, **imagenet)
    res["trained"]["agreement"] = agreement(feats["fp32"], feats["bf16"], strong=0.03, bound=0.999)
    res["trained"]["speed"] = speed
    lite, _ = load_checkpoint(resolve_weights("efficientnet_lite0.in1k"))
    feats, speed = embed_both(lite.eval(), tiles, **imagenet)
    res["lite0"] = {"agreement": agreement(feats["fp32"], feats["bf16"], strong=0.03, bound=0.999), "speed": speed}
    res["load_avg_end"] = os.getloadavg()
    print(json.dumps(res, indent=2, default=float))
    (args.out / "bench_precision_trained.json").write_text(json.dumps(res, indent=2, default=float))
    return res


if __name__ == "__main__":
    main()
