"""Resumable training state (model, optimiser, schedulers, epoch, history, RNG) and trained-weight files."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stratonet.core.errors import InputFileError

STATE_FILE = "last_state.pt"


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper."""
    return model.module if hasattr(model, "module") else model


def save_state(path: Path, model: nn.Module, optimizer, scheduler, plateau, epoch: int, history: list[dict],
               extra: dict | None = None) -> Path:
    """Write everything needed to continue after ``epoch`` (atomically)."""
    state = {
        "epoch": epoch,
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "plateau": plateau.state_dict() if plateau is not None else None,
        "history": history,
        "extra": extra or {},
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
    }
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(p)
    return p


def read_state(path: Path) -> dict:
    """The dict a training-state file holds (InputFileError naming the file if it is missing or unreadable)."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(str(p), "no training state to resume from (run without --resume first)")
    try:
        return torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputFileError(str(p), f"corrupt training state ({type(exc).__name__}: {exc})") from exc


def load_state(path: Path, model: nn.Module, optimizer, scheduler, plateau) -> dict:
    """Restore a :func:`save_state` file into the given objects; returns the dict (``epoch``, ``history``, ``extra``)."""
    state = read_state(path)
    unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if plateau is not None and state.get("plateau") is not None:
        plateau.load_state_dict(state["plateau"])
    rng = state.get("rng") or {}
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
    return state


def save_weights(model: nn.Module, path: Path, card: dict) -> Path:
    """Weights of a network that is not in the model registry (e.g. the 3-block CNN) as safetensors + a card JSON.

    Same layout as :func:`stratonet.models.save_checkpoint`: ``<stem>.safetensors`` plus the card ``<stem>.json``,
    which records the architecture, input size, normalisation, classes and the file's
    sha256.
    """
    from safetensors.torch import save_file

    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    p = p.with_name(p.name + ".safetensors")
    p.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    save_file(tensors, str(p))
    card = dict(card)
    card["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    card["weights_file"] = p.name
    p.with_suffix(".json").write_text(json.dumps(card, indent=2, default=str))
    return p
