"""ResNet / ECA-ResNet in plain PyTorch, with named global-average-pooled taps and truncation.

Module names follow torchvision (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``, ``fc``) so that
state dicts map one to one; the ECA gate of a block is ``layerX.Y.attn``. Bottlenecks are v1.5 (stride on the 3x3).

The "D" variant (``deep_stem=True``, Bag-of-Tricks ResNet-D as in timm's ``resnet50d`` / ``ecaresnet50d``) replaces
the 7x7 stem by three 3x3 convolutions (``conv1.0``, ``conv1.3``, ``conv1.6``; widths 32, 32, 64) and downsamples
shortcuts by a 2x2 average pool before the 1x1 convolution (``downsample.1``, ``downsample.2``), as timm names them.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from stratonet.models.eca import ECA
from stratonet.models.registry import ModelSpec, register_model
from stratonet.models.tapped import TappedNet


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (ResNet-18/34), optional ECA gate before the residual sum."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 eca: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attn = ECA(planes) if eca else None
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.attn is not None:
            out = self.attn(out)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, v1.5) -> 1x1 bottleneck (ResNet-50/101/152), optional ECA gate."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 eca: bool = False):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.attn = ECA(planes * self.expansion) if eca else None
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.attn is not None:
            out = self.attn(out)
        return self.relu(out + identity)


STEM = ["conv1", "bn1", "relu", "maxpool"]
STAGES = ["layer1", "layer2", "layer3", "layer4"]


class TapResNet(TappedNet):
    """A (ECA-)ResNet whose named modules can be tapped; truncated after its last tap.

    Parameters
    ----------
    block : BasicBlock or Bottleneck
    layers : sequence of 4 int
        Blocks per stage (e.g. 3-4-6-3).
    taps : dict or sequence
        Tap name -> module name (e.g. ``{"high": "layer3.5"}``) or a list of module names (each its own tap name).
        The output of each tapped module is global-average-pooled to ``(B, C)``.
    in_chans : int
        Stem input channels (1 for a grayscale stem, 3 for the usual RGB stem).
    num_classes : int, optional
        Adds a classification head. ``head="final"``: the usual ``fc`` on the pooled output of ``layer4``
        (needs an untruncated network); ``head="taps"``: a linear layer on the concatenated pooled taps.
    eca : bool
        Put an ECA gate in every residual block.
    truncate : bool
        Drop every stage and block after the one holding the last tap.
    deep_stem : bool
        ResNet-D: three 3x3 stem convolutions and average-pool shortcuts (timm's ``*50d`` models).
    """

    def __init__(self, block: type, layers: Sequence[int], taps, in_chans: int = 3,
                 num_classes: int | None = None, eca: bool = False, head: str = "taps", truncate: bool = True,
                 deep_stem: bool = False):
        super().__init__()
        self.inplanes = 64
        self.deep_stem = deep_stem
        if deep_stem:
            self.conv1 = nn.Sequential(
                nn.Conv2d(in_chans, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                nn.Conv2d(32, 64, 3, 1, 1, bias=False))
        else:
            self.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            setattr(self, STAGES[i], self._make_layer(block, planes, n, 1 if i == 0 else 2, eca))
        self._init_weights()
        self.in_chans = in_chans
        self._setup_taps(taps, truncate, num_classes, head, "layer4", 512 * block.expansion,
                         "'layer3.3', 'layer3.3.bn3', 'layer4'")

    def fuse_batchnorm(self) -> "TapResNet":
        """Fold every BatchNorm into the convolution before it, for inference (eval mode only).

        The folded BatchNorm becomes an identity with the same name, so taps on it (``layer3.3.bn3``) still read
        the same tensor. Features change only by float rounding (~1e-6 relative). Not for training.
        """
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        if self.training:
            raise RuntimeError("fuse_batchnorm is for eval mode only")
        if isinstance(self.conv1, nn.Sequential) and isinstance(self.bn1, nn.BatchNorm2d):  # deep stem's last conv
            self.conv1[-1] = fuse_conv_bn_eval(self.conv1[-1], self.bn1)
            self.bn1 = nn.Identity()
        return self._fold_batchnorm([("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("0", "1"), ("1", "2"),
                                     ("3", "4")])

    # --- construction -----------------------------------------------------------------------------------------
    def _make_layer(self, block: type, planes: int, n: int, stride: int, eca: bool) -> nn.Sequential:
        downsample = None
        if (stride != 1 or self.inplanes != planes * block.expansion) and self.deep_stem:
            pool = (nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride != 1
                    else nn.Identity())
            downsample = nn.Sequential(pool, nn.Conv2d(self.inplanes, planes * block.expansion, 1, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        elif stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        blocks = [block(self.inplanes, planes, stride, downsample, eca)]
        self.inplanes = planes * block.expansion
        blocks += [block(self.inplanes, planes, eca=eca) for _ in range(1, n)]
        return nn.Sequential(*blocks)

    def _truncate(self, module_names: list[str]) -> None:
        """Drop stages after the last tapped stage and blocks after the last tapped block in it."""
        def position(name: str) -> tuple[int, int]:
            parts = name.split(".")
            if parts[0] in STEM:
                return (-1, 0)
            stage = STAGES.index(parts[0])
            block = int(parts[1]) if len(parts) > 1 else len(getattr(self, parts[0])) - 1
            return (stage, block)

        last_stage, last_block = max(position(n) for n in module_names)
        for i, stage in enumerate(STAGES):
            if i > last_stage and hasattr(self, stage):
                delattr(self, stage)
        if last_stage >= 0:
            name = STAGES[last_stage]
            layer = getattr(self, name)
            setattr(self, name, nn.Sequential(*list(layer)[: last_block + 1]))

    # --- forward ----------------------------------------------------------------------------------------------
    def _body(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in STAGES:
            layer = getattr(self, stage, None)
            if layer is None:
                break
            x = layer(x)
        return x



# --- the family: registered names, default taps, builder ------------------------------------------------------------

DEPTHS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
FAMILIES = {"stratonet": True, "resnet": False, "ecaresnet": True}  # family -> ECA gates
DEEP_STEM_DEPTHS = (50,)  # "D" variants (deep stem, avg-pool shortcuts) with published weights: ecaresnet50d
#: known pretrained weights per registered name (sources in stratonet.models.pretrained)
WEIGHTS = {"resnet18": ("tv_in1k",), "resnet50": ("tv_in1k", "tv2_in1k"), "ecaresnet50d": ("miil_in1k",)}


def resnet_default_taps(family: str, depth: int) -> dict[str, str]:
    """StratoNet: low / medium / high in conv4_x (see :mod:`stratonet.models.registry`); (ECA-)ResNet: the four
    stage outputs."""
    block, layers = DEPTHS[depth]
    if family != "stratonet":
        return {s: s for s in ("layer1", "layer2", "layer3", "layer4")}
    n = layers[2]
    m = min(math.ceil(2 * n / 3), n - 1)
    last_conv = "bn3" if block is Bottleneck else "bn2"
    return {"low": f"layer3.{m - 1}.{last_conv}", "medium": f"layer3.{m - 1}", "high": f"layer3.{n - 1}"}


def _architecture(family: str, depth: int) -> str:
    return {"stratonet": "StratoNet (ECA-ResNet, truncated after its last tap)",
            "resnet": "ResNet (v1.5 bottleneck)" if depth >= 50 else "ResNet (basic blocks)",
            "ecaresnet": "ECA-ResNet"}[family]


def _builder(family: str, depth: int, deep_stem: bool):
    """The builder of one registered ResNet-family name (see :class:`~stratonet.models.registry.ModelSpec`)."""

    def build(name: str, seed: int = 0, in_chans: int = 3, num_classes: int | None = None, taps=None) -> TapResNet:
        block, layers = DEPTHS[depth]
        tap_spec = resnet_default_taps(family, depth) if taps is None else taps
        head = "taps" if family == "stratonet" else "final"
        if head == "final":
            mods = list(tap_spec.values()) if isinstance(tap_spec, dict) else list(tap_spec)
            if not any(str(m).startswith("layer4") for m in mods):
                head = "taps"  # truncated before layer4: the head reads the pooled taps
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            model = TapResNet(block, layers, tap_spec, in_chans=in_chans, num_classes=num_classes,
                              eca=FAMILIES[family], head=head, deep_stem=deep_stem)
        finally:
            torch.random.set_rng_state(gen_state)
        model.model_name = name
        model.seed = seed
        return model.eval()

    return build


def _register_family() -> None:
    names = [(fam, d, False) for fam in FAMILIES for d in DEPTHS]
    names += [(fam, d, True) for fam in FAMILIES for d in DEEP_STEM_DEPTHS]
    for fam, depth, deep in names:
        name = f"{fam}{depth}{'d' if deep else ''}"
        register_model(ModelSpec(name=name, family=fam, depth=depth, builder=_builder(fam, depth, deep),
                                 default_taps=resnet_default_taps(fam, depth), input_size=224,
                                 architecture=_architecture(fam, depth)
                                 + (", ResNet-D (deep stem, average-pool shortcuts)" if deep else ""),
                                 deep_stem=deep, weights=WEIGHTS.get(name, ())))


_register_family()
