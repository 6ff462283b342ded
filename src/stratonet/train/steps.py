"""The training engine: seeding, devices, DDP set-up, optimisers, schedulers and one epoch of train / eval."""

from __future__ import annotations

import os
import random
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from stratonet.core.errors import ConfigError


# --- reproducibility and devices ------------------------------------------------------------------------------

def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; with ``deterministic`` also force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' requested but CUDA is not available")
    return torch.device(device)


@dataclass
class Dist:
    """Distributed context: ``world`` processes, this one is ``rank``; ``main`` writes the outputs."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> tuple[Dist, torch.device]:
    """Join a ``torchrun`` process group when ``WORLD_SIZE`` > 1 (NCCL on CUDA, else gloo); else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), pick_device(device)
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank=rank, world=world, local_rank=local), dev


def all_reduce_sum(values: list[float], d: Dist, device: torch.device) -> list[float]:
    """Sum a list of numbers over all processes (identity when not distributed)."""
    return _all_reduce(values, d, device, "SUM")


def all_reduce_max(values: list[float], d: Dist, device: torch.device) -> list[float]:
    """The largest of each number over all processes (identity when not distributed)."""
    return _all_reduce(values, d, device, "MAX")


def _all_reduce(values: list[float], d: Dist, device: torch.device, op: str) -> list[float]:
    if not d.enabled:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
    return t.tolist()


def autocast_for(device: torch.device, bf16: bool):
    """bf16 autocast on CUDA or CPU when ``bf16`` (the resolved ``--precision``), else a no-op."""
    if bf16 and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


# --- optimisers and schedules ---------------------------------------------------------------------------------

def make_optimizer(params, name: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.9):
    """Adam (default) or SGD with (Nesterov-free) momentum."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer '{name}' (adam, adamw, sgd)")


def make_scheduler(optimizer, name: str, epochs: int, step_size: int = 30, gamma: float = 0.1):
    """Per-epoch scheduler: cosine annealing over ``epochs``, step decay, or none."""
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, step_size), gamma=gamma)
    if name == "none":
        return None
    raise ConfigError(f"unknown scheduler '{name}' (cosine, step, none)")


def make_plateau(optimizer, patience: int = 5, factor: float = 0.1):
    """ReduceLROnPlateau on the validation loss (used together with the epoch scheduler)."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=factor, patience=patience)


# --- one epoch -----------------------------------------------------------------------------------------------

def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks=(1, 5)) -> list[int]:
    """Number of samples whose target is among the top-k logits, per k (k capped at the class count)."""
    maxk = min(max(ks), logits.shape[1])
    pred = logits.topk(maxk, dim=1).indices
    hit = pred.eq(target[:, None])
    return [int(hit[:, :min(k, maxk)].any(dim=1).sum()) for k in ks]


def run_epoch(
    model: nn.Module, loader, criterion: nn.Module, device: torch.device, optimizer=None, bf16: bool = False,
    d: Dist = Dist(), collect: bool = False, progress: str | None = None,
) -> dict:
    """One pass over ``loader``: training when ``optimizer`` is given, evaluation otherwise.

    Returns
    -------
    dict
        ``loss`` (sample-weighted mean), ``top1``, ``top5`` (fractions), ``n``, and with ``collect`` the
        ``y_true`` / ``y_pred`` arrays (this process's share).
    """
    from stratonet.core.progress import track

    train = optimizer is not None
    model.train(train)
    loss_sum, n, c1, c5 = 0.0, 0, 0, 0
    ys, ps = [], []
    batches = loader if progress is None or not d.main else track(loader, progress, total=len(loader))
    grad = torch.enable_grad() if train else torch.no_grad()
    with grad:
        for x, y in batches:
            x = x.to(device, non_blocking=True)
            y = torch.as_tensor(y).to(device, non_blocking=True)
            with autocast_for(device, bf16):
                logits = model(x)
                loss = criterion(logits.float(), y)
            if train:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            b = y.shape[0]
            loss_sum += float(loss.detach()) * b
            n += b
            k1, k5 = topk_correct(logits.detach().float(), y, (1, 5))
            c1 += k1
            c5 += k5
            if collect:
                ys.append(y.cpu().numpy())
                ps.append(logits.detach().float().argmax(1).cpu().numpy())
    loss_sum, n, c1, c5 = all_reduce_sum([loss_sum, n, c1, c5], d, device)
    out = {"loss": loss_sum / max(n, 1), "top1": c1 / max(n, 1), "top5": c5 / max(n, 1), "n": int(n)}
    if collect:
        out["y_true"] = np.concatenate(ys) if ys else np.zeros(0, dtype=int)
        out["y_pred"] = np.concatenate(ps) if ps else np.zeros(0, dtype=int)
    return out
