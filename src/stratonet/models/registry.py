"""Model registry in timm's style: each family module registers its models; nothing here parses a name.

A :class:`ModelSpec` says how to build a model (its builder), its default taps, native input size, input
normalisation, the architecture line of its model card and the tags of its known pretrained weights. The families
register themselves when :mod:`stratonet.models` is imported: :mod:`stratonet.models.resnet` (``stratonet18..152``,
``resnet18..152``, ``ecaresnet18..152``, the ResNet-D ``*50d``) and :mod:`stratonet.models.efficientnet`
(``efficientnet_lite0/1/2``). Where the weights come from (URLs, hashes, the bundled wheel) is
:mod:`stratonet.models.pretrained`; loading them into a fresh network is :func:`stratonet.models.create_model`
(:mod:`stratonet.models.factory`). This module imports no family and no weights code, so there is no circle.

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

from dataclasses import dataclass, field
from typing import Callable

from stratonet.core.errors import ConfigError

IMAGENET_NORM = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "name": "imagenet"}


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model name.

    Attributes
    ----------
    name : str
        The registered name (``stratonet50``, ``efficientnet_lite0``).
    family : str
        ``stratonet``, ``resnet``, ``ecaresnet`` or ``efficientnet_lite``.
    depth : int
        Layers of a ResNet (18 ... 152); for EfficientNet-Lite the variant number.
    builder : callable
        ``builder(name, seed=, in_chans=, num_classes=, taps=)`` -> the network, seeded, in eval mode.
    default_taps : dict
        Tap name -> module name when no taps are asked for.
    input_size : int
        Native input side in pixels (224 for the ResNets, 224/240/260 for EfficientNet-Lite0/1/2).
    normalization : dict
        ``mean``, ``std`` (per RGB channel) and ``name`` of the input normalisation of its pretrained weights.
    architecture : str
        The architecture line of a model card.
    deep_stem : bool
        ResNet-D deep stem and average-pool shortcuts.
    weights : tuple of str
        Tags of the known pretrained weights (``tv_in1k`` -> ``resnet50.tv_in1k``, see
        :mod:`stratonet.models.pretrained`).
    """

    name: str
    family: str
    depth: int
    builder: Callable = field(repr=False, compare=False)
    default_taps: dict = field(default_factory=dict)
    input_size: int = 224
    normalization: dict = field(default_factory=lambda: dict(IMAGENET_NORM))
    architecture: str = ""
    deep_stem: bool = False
    weights: tuple[str, ...] = ()


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (a family module calls this once per model); returns it."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] != spec:
        raise ValueError(f"model '{spec.name}' is registered twice with different specs")
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """All registered model names, in registration order."""
    return list(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    """The spec of a registered model; ConfigError naming the available models otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model '{name}' (available: {', '.join(list_models())})") from None


def default_taps(name: str) -> dict[str, str]:
    """Default tap name -> module name of a registered model (see the module docstring)."""
    return dict(get_model_spec(name).default_taps)


def pretrained_names(name: str) -> list[str]:
    """Names of the known pretrained weights of a model (``resnet50.tv_in1k``, ...)."""
    return [f"{name}.{tag}" for tag in get_model_spec(name).weights]


def create_model(name: str, seed: int = 0, in_chans: int = 3, num_classes: int | None = None, taps=None):
    """Build a registered model with seeded (untrained) weights; :func:`stratonet.models.create_model` adds
    ``init=`` (start from pretrained weights). Parameters as there."""
    spec = get_model_spec(name)
    return spec.builder(name, seed=seed, in_chans=in_chans, num_classes=num_classes, taps=taps)


# --- what a registered name is, read from its spec (kept for callers of the earlier registry) ----------------------

def is_efficientnet(name: str) -> bool:
    """True for a model of the EfficientNet-Lite family."""
    return name in _REGISTRY and _REGISTRY[name].family == "efficientnet_lite"


def is_deep_stem(name: str) -> bool:
    """True for the ResNet-D models (``ecaresnet50d``, ``resnet50d``, ``stratonet50d``)."""
    return name in _REGISTRY and _REGISTRY[name].deep_stem


def parse_name(name: str) -> tuple[str, int]:
    """``"stratonet50"`` -> ``("stratonet", 50)`` from the registry; ConfigError for unknown names."""
    spec = get_model_spec(name)
    return spec.family, spec.depth
