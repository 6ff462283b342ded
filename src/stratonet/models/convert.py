"""Import torchvision ResNet, timm ECA-ResNet and EfficientNet-Lite state dicts into StratoNet models by key mapping.

Our module names follow torchvision, so a torchvision ResNet maps one to one. The ECA gate of a block is called
``se`` in timm's ECA-ResNets (``layer1.0.se.conv.weight``), ``attn`` in newer layouts and ``eca`` in the ECA-Net
reference code; all become ``layerX.Y.attn.conv.weight``. Keys after the last tap of a truncated model (``layer4.*``,
``fc.*`` for StratoNet) are dropped and listed.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from stratonet.core.errors import InputFileError
from stratonet.models.registry import create_model
from stratonet.models.resnet import DEPTHS, BasicBlock
from stratonet.models.tapped import adapt_stem, load_matching

STEM_KEY = {False: "conv1.weight", True: "conv1.0.weight"}  # first convolution: plain / deep stem
_ECA_KEY = re.compile(r"^(layer\d+\.\d+)\.(se|eca|attn)\.conv\.weight$")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from .pth/.pt/.bin (``torch.load``, weights only) or .safetensors.

    Nested checkpoints (``{"state_dict": ...}``, ``{"model": ...}``) and DataParallel ``module.`` prefixes are
    unwrapped.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(str(p), "file not found")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p))
        else:
            sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputFileError(str(p), f"cannot read a state dict ({type(exc).__name__}: {exc})") from exc
    for key in ("state_dict", "model", "model_state_dict", "state_dict_ema"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise InputFileError(str(p), "not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def rename_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision / timm / ECA-Net key names -> ours."""
    out = {}
    for k, v in sd.items():
        m = _ECA_KEY.match(k)
        out[f"{m.group(1)}.attn.conv.weight" if m else k] = v
    return out


def detect_layout(sd: dict[str, torch.Tensor], source: str = "state dict") -> dict:
    """Family (resnet / ecaresnet), depth, stem (plain or ResNet-D deep stem), stem channels and classes of a
    (renamed) ResNet state dict."""
    deep_stem = "conv1.0.weight" in sd
    if deep_stem and not ("conv1.6.weight" in sd and tuple(sd["conv1.0.weight"].shape[:1]) == (32,)
                          and "layer2.0.downsample.1.weight" in sd):
        raise InputFileError(source, "deep-stem ResNet state dict of an unsupported kind (only the ResNet-D layout "
                                     "of timm's '*50d' models: conv1.0/3/6 with widths 32-32-64, avg-pool shortcuts)")
    if not deep_stem and "conv1.weight" not in sd:
        raise InputFileError(source, "not a ResNet state dict (no 'conv1.weight' or 'conv1.0.weight')")
    blocks = []
    for stage in range(1, 5):
        idx = {int(k.split(".")[1]) for k in sd if k.startswith(f"layer{stage}.")}
        blocks.append(max(idx) + 1 if idx else 0)
    bottleneck = "layer1.0.conv3.weight" in sd
    depth = next((d for d, (blk, layers) in DEPTHS.items()
                  if tuple(blocks) == tuple(layers) and (blk is not BasicBlock) == bottleneck), None)
    if depth is None:
        raise InputFileError(source, f"unknown ResNet layout: blocks per stage {blocks}, "
                                     f"{'bottleneck' if bottleneck else 'basic'} blocks")
    eca = any(k.endswith(".attn.conv.weight") for k in sd)
    return {
        "family": "ecaresnet" if eca else "resnet",
        "depth": depth,
        "deep_stem": deep_stem,
        "in_chans": int(sd[STEM_KEY[deep_stem]].shape[1]),
        "num_classes": int(sd["fc.weight"].shape[0]) if "fc.weight" in sd else None,
    }


def import_state_dict(sd: dict[str, torch.Tensor], model_name: str | None = None, in_chans: int | None = None,
                      taps=None, source: str = "state dict"):
    """Build a model and load a torchvision / timm ResNet state dict into it.

    Parameters
    ----------
    sd : dict
        The source state dict.
    model_name : str, optional
        Target model; default: ``resnet<N>`` or ``ecaresnet<N>`` as detected. A StratoNet target needs ECA gates
        in the source, and its depth must match.
    in_chans : int, optional
        Target stem channels; a 3-channel stem is summed to 1 channel when 1 is asked for.
    taps : optional
        Target taps (default: the model's).

    Returns
    -------
    (model, info)
        ``info`` holds the detected layout and the list of dropped keys.
    """
    sd = rename_keys(sd)
    layout = detect_layout(sd, source)
    suffix = "d" if layout["deep_stem"] else ""
    target = model_name or f"{layout['family']}{layout['depth']}{suffix}"
    from stratonet.models.registry import is_deep_stem, parse_name

    fam, depth = parse_name(target)
    if is_deep_stem(target) != layout["deep_stem"]:
        have = "a deep (ResNet-D) stem" if layout["deep_stem"] else "a plain 7x7 stem"
        raise InputFileError(source, f"weights have {have}, cannot load into {target} "
                                     f"(use {fam}{depth}{suffix})")
    if depth != layout["depth"]:
        raise InputFileError(source, f"weights are a depth-{layout['depth']} ResNet, cannot load into {target}")
    if fam in ("stratonet", "ecaresnet") and layout["family"] != "ecaresnet":
        raise InputFileError(source, f"weights have no ECA gates, cannot load into {target} (use resnet{depth})")
    if fam == "resnet" and layout["family"] == "ecaresnet":
        raise InputFileError(source, f"weights have ECA gates, load them into ecaresnet{depth} or stratonet{depth}")
    chans = in_chans or layout["in_chans"]
    stem_key = STEM_KEY[layout["deep_stem"]]
    adapt_stem(sd, stem_key, chans, source)
    num_classes = layout["num_classes"] if fam != "stratonet" else None
    model = create_model(target, seed=0, in_chans=chans, num_classes=num_classes, taps=taps)
    dropped = load_matching(model, sd, target, source)
    return model.eval(), {"layout": layout, "dropped": dropped}


def import_any_state_dict(sd: dict[str, torch.Tensor], model_name: str | None = None, in_chans: int | None = None,
                          taps=None, source: str = "state dict"):
    """Dispatch on the key layout: EfficientNet-PyTorch style (``_conv_stem``) or torchvision / timm ResNet.

    Returns ``(model, info)`` as :func:`import_state_dict`.
    """
    from stratonet.models.efficientnet import import_efficientnet_state_dict, is_efficientnet_state_dict

    if is_efficientnet_state_dict(sd):
        return import_efficientnet_state_dict(sd, model_name=model_name, in_chans=in_chans, taps=taps, source=source)
    return import_state_dict(sd, model_name=model_name, in_chans=in_chans, taps=taps, source=source)


def convert_checkpoint(src: str | Path, out: str | Path, model_name: str | None = None, in_chans: int | None = None,
                       name: str | None = None, training_data: str = "unknown", epochs: int | None = None,
                       input_size: int | None = None, card: dict | None = None) -> tuple[Path, dict]:
    """Read a state dict file, import it (:func:`import_any_state_dict`) and save a StratoNet checkpoint.

    The card names the source file and its sha256 (``source_file``, ``source_sha256``) next to the sha256 of the
    written weights, plus whatever ``card`` adds (``source_url``, ``license``, ``normalization`` ...).

    Returns
    -------
    (card path, info)
        ``info`` as from :func:`import_any_state_dict`.
    """
    from stratonet.models.checkpoint import save_checkpoint, sha256_file

    sd = read_state_dict(src)
    net, info = import_any_state_dict(sd, model_name=model_name, in_chans=in_chans, source=str(src))
    fields = {
        "name": name or Path(out).name.removesuffix(".safetensors").removesuffix(".json"),
        "training_data": training_data, "epochs": epochs, "imported_from": str(src),
        "source_file": Path(src).name, "source_sha256": sha256_file(src), "source_layout": info["layout"],
        "dropped_keys": len(info["dropped"]),
    }
    if input_size:
        fields["input_size"] = int(input_size)
    fields.update(card or {})
    return save_checkpoint(net, out, fields), info
