"""The epoch loop shared by both trainers: train, validate, step the schedulers, log, save state for resuming."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from stratonet.core.progress import console, get_logger
from stratonet.train.steps import Dist, run_epoch
from stratonet.train.state import load_state, save_state


@dataclass(frozen=True)
class FitConfig:
    """How :func:`fit` runs: for how long, where, with what precision, and where it saves state for resuming.

    Parameters
    ----------
    epochs : int
        The last epoch to train (a resume continues after the last saved one).
    device : torch.device
    state_path : path
        The state file rewritten after every epoch (model, optimiser, schedulers, history).
    resume : bool
        Continue from ``state_path``.
    bf16 : bool
        Autocast to bfloat16.
    d : Dist
        The distributed context (one process by default).
    top5 : bool
        Rows with top-1 and top-5 accuracies (``train_top1`` ...); else ``train_acc`` / ``val_acc``.
    """

    epochs: int
    device: Any
    state_path: Path
    resume: bool = False
    bf16: bool = False
    d: Dist = field(default_factory=Dist)
    top5: bool = True


@dataclass(frozen=True)
class FitHooks:
    """Callbacks of :func:`fit`: ``on_epoch(epoch, row)`` after each epoch on the main process (e.g. to save the
    best checkpoint; the state file is rewritten after it), ``extra_state()`` saved with the state,
    ``on_resume(extra)`` given it back on a resume."""

    on_epoch: Callable[[int, dict], None] | None = None
    extra_state: Callable[[], dict] | None = None
    on_resume: Callable[[dict], None] | None = None


def fit(model, train_loader, val_loader, criterion, optimizer, scheduler, plateau, cfg: FitConfig, *,
        train_sampler=None, hooks: FitHooks = FitHooks()) -> list[dict]:
    """Train for ``cfg.epochs`` epochs (continuing after the last saved one with ``cfg.resume``).

    Each epoch row has ``epoch``, ``train_loss``, ``train_top1`` (``train_acc``), ``val_loss``, ``val_top1``
    (``val_acc``), with ``top5`` also the top-5 accuracies, ``lr`` and ``seconds``.

    Returns
    -------
    list of dict
        The whole history, including epochs from before a resume.
    """
    epochs, device, state_path, bf16, d, top5 = cfg.epochs, cfg.device, cfg.state_path, cfg.bf16, cfg.d, cfg.top5
    on_epoch, extra_state, on_resume = hooks.on_epoch, hooks.extra_state, hooks.on_resume
    history: list[dict] = []
    start = 0
    if cfg.resume:
        st = load_state(state_path, model, optimizer, scheduler, plateau)
        history = list(st["history"])
        start = int(st["epoch"])
        if hasattr(scheduler, "T_max"):  # a resumed cosine schedule stretches to the new --epochs
            scheduler.T_max = max(1, epochs)
        if on_resume is not None:
            on_resume(st.get("extra") or {})
        if d.main:
            console.print(f"resuming after epoch {start} from {state_path}")
    log = get_logger()
    for epoch in range(start + 1, epochs + 1):
        t0 = time.perf_counter()
        for s in (train_sampler, getattr(train_loader, "batch_sampler", None), getattr(train_loader, "sampler", None)):
            if hasattr(s, "set_epoch"):
                s.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        tr = run_epoch(model, train_loader, criterion, device, optimizer, bf16=bf16, d=d,
                       progress=f"epoch {epoch}/{epochs} train")
        va = run_epoch(model, val_loader, criterion, device, None, bf16=bf16, d=d)
        if scheduler is not None:
            scheduler.step()
        if plateau is not None:
            plateau.step(va["loss"])
        if top5:
            row = {"epoch": epoch, "train_loss": tr["loss"], "train_top1": tr["top1"], "train_top5": tr["top5"],
                   "val_loss": va["loss"], "val_top1": va["top1"], "val_top5": va["top5"]}
        else:
            row = {"epoch": epoch, "train_loss": tr["loss"], "train_acc": tr["top1"],
                   "val_loss": va["loss"], "val_acc": va["top1"]}
        row.update({"lr": lr, "seconds": round(time.perf_counter() - t0, 2)})
        history.append(row)
        if d.main:
            acc = "val_top1" if top5 else "val_acc"
            msg = (f"epoch {epoch}/{epochs}: train loss {tr['loss']:.4f}, val loss {va['loss']:.4f}, "
                   f"val top-1 {row[acc]:.3f}" + (f", val top-5 {va['top5']:.3f}" if top5 else ""))
            console.print(msg)
            log.info(msg)
            if on_epoch is not None:
                on_epoch(epoch, row)
            save_state(state_path, model, optimizer, scheduler, plateau, epoch, history,
                       extra_state() if extra_state else None)
    return history
