"""Checkpoints: weights as safetensors plus a JSON model card that says how to rebuild and feed the model.

``save_checkpoint(model, "ckpt/stratonet50-imagenet", card)`` writes ``stratonet50-imagenet.safetensors`` and
``stratonet50-imagenet.json``. The card records the architecture, depth, taps, stem channels, head, input size,
normalisation, channel handling, training data, epochs and the sha256 of the weights file, which
:func:`load_checkpoint` verifies.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from stratonet.core.errors import InputFileError

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights.safetensors, card.json)`` for a checkpoint path given with or without either suffix."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_card(model, **extra) -> dict:
    """The card of a model built by :func:`~stratonet.models.create_model`, updated with ``extra``."""
    from stratonet.models.registry import is_efficientnet, parse_name

    in_chans = model.in_chans
    if is_efficientnet(model.model_name):
        from stratonet.models.efficientnet import LITE_MEAN, LITE_STD

        architecture = "EfficientNet-Lite (no squeeze-and-excitation, ReLU6; TF 'SAME' padding)"
        depth = len(model.blocks)
        input_size = model.input_size
        # the TF lite checkpoints were trained on (pixel - 127) / 128
        normalization = {"mean": LITE_MEAN, "std": LITE_STD, "name": "efficientnet-lite (127/255, 128/255)"}
    else:
        fam, depth = parse_name(model.model_name)
        architecture = {"stratonet": "StratoNet (ECA-ResNet, truncated after its last tap)",
                        "resnet": "ResNet (v1.5 bottleneck)" if depth >= 50 else "ResNet (basic blocks)",
                        "ecaresnet": "ECA-ResNet"}[fam]
        if getattr(model, "deep_stem", False):
            architecture += ", ResNet-D (deep stem, average-pool shortcuts)"
        input_size = 224
        normalization = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "name": "imagenet"}
    card = {
        "model": model.model_name,
        "architecture": architecture,
        "depth": depth,
        "taps": dict(model.tap_map),
        "feature_info": model.feature_info,
        "in_chans": in_chans,
        "num_classes": model.num_classes,
        "head": model.head_type if model.num_classes else None,
        "input_size": input_size,
        "normalization": normalization,
        "channel_handling": ("each channel alone, rescaled to [0, 1] (0.1-99.9 percentiles), "
                             + ("replicated to the 3-channel stem" if in_chans == 3 else "fed to a 1-channel stem")),
        "training_data": None,
        "epochs": None,
        "seed": getattr(model, "seed", None),
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    if getattr(model, "init_report", None):  # initialised from pretrained weights: what was loaded, what was not
        card["init"] = model.init_report
    card.update(extra)
    return card


def save_checkpoint(model, path: str | Path, card: dict | None = None) -> Path:
    """Write ``<path>.safetensors`` and ``<path>.json`` (model card + sha256 of the weights file).

    Parameters
    ----------
    model : TapResNet
    path : str or Path
        Checkpoint path, with or without suffix.
    card : dict, optional
        Fields to record (``training_data``, ``epochs``, ``input_size``, ``classes``, ...); architecture fields are
        filled in from the model.

    Returns
    -------
    Path of the JSON card.
    """
    from safetensors.torch import save_file

    weights, card_path = checkpoint_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = weights.with_name(weights.name + ".tmp")
    save_file(state, str(tmp), metadata={"model": model.model_name})
    tmp.replace(weights)
    full = model_card(model, **(card or {}))
    full["weights_file"] = weights.name
    full["sha256"] = sha256_file(weights)
    card_path.write_text(json.dumps(full, indent=2, default=str))
    return card_path


def read_card(path: str | Path) -> dict:
    """The model card of a checkpoint (InputFileError if missing or malformed)."""
    weights, card_path = checkpoint_paths(path)
    if not card_path.exists():
        raise InputFileError(str(card_path), "model card not found (a checkpoint is <name>.safetensors + <name>.json)")
    try:
        return json.loads(card_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputFileError(str(card_path), f"model card is not valid JSON ({exc.msg}, line {exc.lineno})") from exc


def load_checkpoint(path: str | Path, map_location: str = "cpu"):
    """Rebuild a model from its card and load its weights, after checking the sha256.

    Returns
    -------
    (model, card)
        The model in eval mode with ``model.card`` set.
    """
    from safetensors.torch import load_file

    from stratonet.models.registry import create_model

    weights, card_path = checkpoint_paths(path)
    card = read_card(path)
    if not weights.exists():
        raise InputFileError(str(weights), "weights file not found")
    digest = sha256_file(weights)
    if card.get("sha256") and digest != card["sha256"]:
        raise InputFileError(str(weights), f"sha256 {digest[:12]} does not match the model card ({card['sha256'][:12]})")
    for key in ("model", "taps", "in_chans"):
        if key not in card:
            raise InputFileError(str(card_path), f"model card lacks '{key}'")
    model = create_model(card["model"], seed=int(card.get("seed") or 0), in_chans=int(card["in_chans"]),
                         num_classes=card.get("num_classes"), taps=card["taps"])
    try:
        state = load_file(str(weights), device=map_location)
    except Exception as exc:  # safetensors raises its own error types
        raise InputFileError(str(weights), f"cannot read weights ({exc})") from exc
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputFileError(str(weights), f"weights do not fit {card['model']}: missing {missing[:3]}, "
                                           f"unexpected {unexpected[:3]}")
    model.card = card
    return model.eval(), card


def weights_label(card: dict | None, seed: int) -> str:
    """Provenance label: ``"untrained (seed N)"`` or ``"<checkpoint> (sha256 1234abcd)"``."""
    if card is None:
        return f"untrained (seed {seed})"
    name = card.get("name") or Path(card.get("weights_file", "checkpoint")).stem
    return f"{name} (sha256 {str(card.get('sha256', ''))[:8]})"


def training_summary(card: dict) -> str | None:
    """One line on the data a checkpoint was trained on (for manifests and the report), or None if unknown.

    A ``train ssl`` card gives plates, sites, cells, channels, that no label was read, and the steps and time;
    other cards give their ``training_data`` text (e.g. ImageNet-1k).
    """
    data = card.get("training_data")
    if not data:
        return None
    if not isinstance(data, dict):
        return str(data)
    plates = data.get("plates") or []
    shown = ", ".join(map(str, plates[:3])) + (f" and {len(plates) - 3} more" if len(plates) > 3 else "")
    parts = [f"{len(plates)} plate{'s' if len(plates) != 1 else ''} ({shown})" if plates else None,
             f"{data['n_sites']} sites" if data.get("n_sites") is not None else None,
             f"{data['n_cells']} cells" if data.get("n_cells") is not None else None,
             "channels " + ",".join(data["channels"]) if data.get("channels") else None,
             "labels not read" if data.get("labels_read") is False else None]
    tr = card.get("training") or {}
    if tr.get("steps_done") is not None:
        method = str(tr.get("method", "")).split(" (")[0] or "training"
        parts.append(f"{method}: {tr['steps_done']} steps, {tr.get('seconds', 0):.0f} s")
    return "; ".join(p for p in parts if p)
