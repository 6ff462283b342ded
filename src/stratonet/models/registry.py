"""Model registry: ``stratonet18..152``, ``resnet18..152``, ``ecaresnet18..152``, each with default taps.

Default taps
------------
stratonet<N> (ECA-ResNet, truncated after its last tap), thesis rule generalised to every depth: with ``n`` blocks in
conv4_x (``layer3``) and ``m = min(ceil(2n/3), n - 1)`` (the 4th of 6 blocks for ResNet-50):

- ``low``: block ``m`` of conv4_x after its last convolution (``layer3.{m-1}.bn3``, or ``bn2`` for basic blocks),
  before the ECA gate and the residual sum;
- ``medium``: the output of that block (``layer3.{m-1}``);
- ``high``: the output of conv4_x's last block (``layer3.{n-1}``).

So StratoNet-50 taps ``layer3.3.bn3``, ``layer3.3`` and ``layer3.5`` and keeps ~8.5 M parameters; StratoNet-18 taps
``layer3.0.bn2``, ``layer3.0``, ``layer3.1``; StratoNet-34 ``layer3.3.bn2``, ``layer3.3``, ``layer3.5``; StratoNet-101 ``layer3.15.bn3``, ``layer3.15``, ``layer3.22``;
StratoNet-152 ``layer3.23.bn3``, ``layer3.23``, ``layer3.35``.

resnet<N> / ecaresnet<N>: the four stage outputs ``layer1`` ... ``layer4`` (nothing truncated); with ``num_classes``
they get the usual ``fc`` on the pooled ``layer4`` output (ResNet-50 with a 1000-class head: 25.6 M parameters).

resnet50d / ecaresnet50d / stratonet50d: the same with the ResNet-D deep stem and average-pool shortcuts (timm's
``ecaresnet50d`` ImageNet weights load into ``ecaresnet50d`` or, truncated, ``stratonet50d``).

efficientnet_lite0/1/2 (:mod:`stratonet.models.efficientnet`): ``low`` = end of stage 4 (stride 16), ``medium`` = end
of stage 5 (stride 16), ``high`` = end of stage 6 (stride 32), cut there; with ``num_classes`` the whole network and
its ``fc`` on the 1280-channel head (``head_act``); lite0 with its 1000-class head: 4.65 M parameters.
"""

from __future__ import annotations

import math

import torch

from stratonet.errors import ConfigError
from stratonet.models.resnet import BasicBlock, Bottleneck, TapResNet

DEPTHS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
FAMILIES = {"stratonet": True, "resnet": False, "ecaresnet": True}  # family -> ECA gates


DEEP_STEM_DEPTHS = (50,)  # "D" variants (deep stem, avg-pool shortcuts) with published weights: ecaresnet50d


def list_models() -> list[str]:
    """All registered model names."""
    from stratonet.models.efficientnet import VARIANTS

    plain = [f"{fam}{d}" for fam in FAMILIES for d in DEPTHS]
    deep = [f"{fam}{d}d" for fam in FAMILIES for d in DEEP_STEM_DEPTHS]
    return plain + deep + list(VARIANTS)


def is_deep_stem(name: str) -> bool:
    """True for the ResNet-D names (``ecaresnet50d``, ``resnet50d``, ``stratonet50d``)."""
    return name.endswith("d") and name[:-1] in [f"{fam}{d}" for fam in FAMILIES for d in DEEP_STEM_DEPTHS]


def is_efficientnet(name: str) -> bool:
    """True for the EfficientNet-Lite names (``efficientnet_lite0`` ...)."""
    from stratonet.models.efficientnet import VARIANTS

    return name in VARIANTS


def parse_name(name: str) -> tuple[str, int]:
    """``"stratonet50"`` -> ``("stratonet", 50)`` (``"ecaresnet50d"`` -> ``("ecaresnet", 50)``, see
    :func:`is_deep_stem`); ConfigError for unknown names."""
    if is_deep_stem(name):
        name = name[:-1]
    for fam in sorted(FAMILIES, key=len, reverse=True):
        if name.startswith(fam) and name[len(fam):].isdigit() and int(name[len(fam):]) in DEPTHS:
            return fam, int(name[len(fam):])
    raise ConfigError(f"unknown model '{name}' (available: {', '.join(list_models())})")


def default_taps(name: str) -> dict[str, str]:
    """Default tap name -> module name of a registered model (see the module docstring)."""
    if is_efficientnet(name):
        from stratonet.models import efficientnet

        return efficientnet.default_taps(name)
    fam, depth = parse_name(name)
    block, layers = DEPTHS[depth]
    if fam != "stratonet":
        return {s: s for s in ("layer1", "layer2", "layer3", "layer4")}
    n = layers[2]
    m = min(math.ceil(2 * n / 3), n - 1)
    last_conv = "bn3" if block is Bottleneck else "bn2"
    return {"low": f"layer3.{m - 1}.{last_conv}", "medium": f"layer3.{m - 1}", "high": f"layer3.{n - 1}"}


def create_model(name: str, seed: int = 0, in_chans: int = 3, num_classes: int | None = None,
                 taps=None, init=None) -> TapResNet:
    """Build a registered model, initialised deterministically from ``seed``.

    Parameters
    ----------
    name : str
        One of :func:`list_models`.
    seed : int
        Seed of the weight initialisation (an untrained network is "untrained (seed N)").
    in_chans : int
        1 for a grayscale stem, 3 for the RGB stem (grayscale channels are then replicated).
    num_classes : int, optional
        Adds a classification head (pooled taps -> linear for StratoNet; the usual ``fc`` for (ECA-)ResNets).
    taps : None, list of str or dict
        Module names to tap (``["layer3.3.conv3", ...]``) or ``{tap_name: module_name}``; None gives the defaults.
        Everything after the last tap is dropped.
    init : str or Path, optional
        Start from pretrained weights: every tensor whose name and shape match is loaded, the rest (e.g. the ECA
        gates of StratoNet from a plain ResNet) keeps its seeded initialisation. A weights name
        (``resnet50.tv_in1k``; ``resnet50.imagenet`` picks the first registered ImageNet weights of resnet50),
        a checkpoint or an original ``.pth``. What was loaded is in ``model.init_report`` and the model card.

    Returns
    -------
    TapResNet or TapEfficientNet
        In eval mode, with ``model_name``, ``seed``, ``tap_names`` and ``feature_info``.
    """
    if init is not None:
        from stratonet.models.pretrained import init_from_pretrained

        model = create_model(name, seed=seed, in_chans=in_chans, num_classes=num_classes, taps=taps)
        init_from_pretrained(model, init)
        return model.eval()
    if is_efficientnet(name):
        from stratonet.models.efficientnet import create_efficientnet

        return create_efficientnet(name, seed=seed, in_chans=in_chans, num_classes=num_classes, taps=taps)
    fam, depth = parse_name(name)
    block, layers = DEPTHS[depth]
    tap_spec = default_taps(name) if taps is None else taps
    head = "taps" if fam == "stratonet" else "final"
    if head == "final":
        mods = list(tap_spec.values()) if isinstance(tap_spec, dict) else list(tap_spec)
        if not any(str(m).startswith("layer4") for m in mods):
            head = "taps"  # truncated before layer4: the head reads the pooled taps
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = TapResNet(block, layers, tap_spec, in_chans=in_chans, num_classes=num_classes,
                          eca=FAMILIES[fam], head=head, deep_stem=is_deep_stem(name))
    finally:
        torch.random.set_rng_state(gen_state)
    model.model_name = name
    model.seed = seed
    return model.eval()
