"""Training throughput (images/s) of StratoNet-50 and ResNet-50 at 224 px.

Times full training steps (forward, cross-entropy, backward, Adam step) on random 3-channel 224 x 224 batches,
after warm-up steps, and reports images per second. On CUDA it uses bf16 autocast, as ``train classifier`` does.

    PYTHONPATH=src python benchmarks/speed/bench_train.py --batch-size 8 --steps 4 --warmup 1
    PYTHONPATH=src python benchmarks/speed/bench_train.py --device cuda --batch-size 128 --steps 20   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from stratonet.models import create_model
from stratonet.core.runinfo import device_info
from stratonet.train.steps import autocast_for


def throughput(name: str, batch_size: int, steps: int, warmup: int, device: torch.device, bf16: bool,
               num_classes: int = 1000, size: int = 224) -> dict:
    """Images per second of ``steps`` timed training steps of model ``name`` (after ``warmup`` untimed ones)."""
    model = create_model(name, seed=0, in_chans=3, num_classes=num_classes).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch_size, 3, size, size, generator=g).to(device)
    y = torch.randint(0, num_classes, (batch_size,), generator=g).to(device)

    def step() -> None:
        with autocast_for(device, bf16):
            loss = crit(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    return {"model": name, "params_m": round(params / 1e6, 2), "batch_size": batch_size, "steps": steps,
            "seconds": round(dt, 2), "images_per_s": round(batch_size * steps / dt, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="stratonet50,resnet50")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--no-bf16", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = [throughput(m, args.batch_size, args.steps, args.warmup, device, not args.no_bf16)
            for m in args.models.split(",")]
    info = device_info(args.device)
    info["torch_threads"] = torch.get_num_threads()
    print(json.dumps({"device": info, "bf16": device.type == "cuda" and not args.no_bf16, "results": rows}, indent=2))
    if len(rows) == 2:
        print(f"{rows[0]['model']} / {rows[1]['model']} throughput ratio: "
              f"{rows[0]['images_per_s'] / rows[1]['images_per_s']:.2f}")


if __name__ == "__main__":
    main()
