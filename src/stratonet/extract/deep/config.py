"""What ``extract deep`` computes: the network, the unit of input, the intensity scaling (frozen, built once).

The CLI (``stratonet extract deep``) and the Python API build one :class:`DeepConfig` and pass it whole to every
engine; :meth:`DeepConfig.from_options` maps the flat option names of the CLI and of the keyword form of
:func:`stratonet.runtime.extract_deep` onto it, the one place where that list is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from stratonet.core.errors import ConfigError
from stratonet.images.scaling import DEFAULT_SCALING, ScalingSpec


@dataclass(frozen=True)
class ModelChoice:
    """Which network and how to run it: ``model``, ``weights`` (``"default"``: the bundled ImageNet
    EfficientNet-Lite0; None or ``"none"``: untrained), the initialisation ``seed``, ``taps``, input
    ``normalize`` (imagenet | none), ``fuse_bn``, ``precision`` (auto | fp32 | bf16) and ``compile``."""

    model: str | None = None
    weights: str | Path | None = "default"
    seed: int = 0
    taps: object = None
    normalize: str = "imagenet"
    fuse_bn: bool = True
    precision: str = "auto"
    compile: bool = False


@dataclass(frozen=True)
class InputSpec:
    """What a unit of input is: ``channels`` (default: all in the index), ``mode`` (whole | tiles | cells),
    ``input_size``, ``tile_size``, ``crop_size``, ``centers`` (cells: a table of nucleus centres),
    ``center_object`` and ``max_cells`` (cells: a seeded sample of nuclei per site)."""

    channels: tuple[str, ...] | None = None
    mode: str = "whole"
    input_size: int | None = None
    tile_size: int | None = None
    crop_size: int = 96
    centers: str | Path | None = None
    center_object: bool = False
    max_cells: int | None = None


#: Flat option name -> (part of DeepConfig, field): the one list of ``extract deep``'s computing options.
_MODEL_KEYS = {"model": "model", "weights": "weights", "seed": "seed", "taps": "taps", "normalize": "normalize",
               "fuse_bn": "fuse_bn", "precision": "precision", "compile": "compile"}
_INPUT_KEYS = {f.name: f.name for f in fields(InputSpec)}
_SCALING_KEYS = {"scaling": "mode", "percentiles": "percentiles", "scaling_file": "file", "bit_depth": "bit_depth",
                 "scaling_sites": "sites", "illum": "illum"}
_TOP_KEYS = ("batch_size", "device", "on_error")
OPTION_NAMES = frozenset(_MODEL_KEYS) | frozenset(_INPUT_KEYS) | frozenset(_SCALING_KEYS) | frozenset(_TOP_KEYS)


@dataclass(frozen=True)
class DeepConfig:
    """Everything that shapes ``extract deep``'s rows, whatever engine runs it.

    Attributes
    ----------
    model : ModelChoice
    input : InputSpec
    scaling : ScalingSpec
        Its ``seed`` (the plate-scaling site sample) is the model's ``seed`` when built by :meth:`from_options`.
    batch_size : int, optional
        Channel images per forward pass (default: 16 on CPU, 64 on CUDA).
    device : {"auto", "cpu", "cuda"}
    on_error : {"fail", "skip"}
    """

    model: ModelChoice = field(default_factory=ModelChoice)
    input: InputSpec = field(default_factory=InputSpec)
    scaling: ScalingSpec = field(default_factory=ScalingSpec)
    batch_size: int | None = None
    device: str = "auto"
    on_error: str = "fail"

    @classmethod
    def from_options(cls, **options) -> "DeepConfig":
        """Build from the flat option names of ``stratonet extract deep`` (``channels``, ``model``, ``weights``,
        ``seed``, ``taps``, ``mode``, ``input_size``, ``tile_size``, ``crop_size``, ``centers``, ``max_cells``,
        ``center_object``, ``normalize``, ``fuse_bn``, ``precision``, ``compile``, ``illum``, ``percentiles``,
        ``scaling``, ``scaling_file``, ``bit_depth``, ``scaling_sites``, ``batch_size``, ``device``,
        ``on_error``); an unknown name is an error."""
        unknown = sorted(set(options) - OPTION_NAMES)
        if unknown:
            raise ConfigError(f"unknown deep option(s) {unknown}")
        model = {v: options[k] for k, v in _MODEL_KEYS.items() if k in options}
        inp = {v: options[k] for k, v in _INPUT_KEYS.items() if k in options}
        if inp.get("channels") is not None:
            inp["channels"] = tuple(inp["channels"])
        scaling = {v: options[k] for k, v in _SCALING_KEYS.items() if k in options}
        scaling.setdefault("mode", DEFAULT_SCALING)
        if "percentiles" in scaling:
            scaling["percentiles"] = tuple(scaling["percentiles"])
        scaling["seed"] = model.get("seed", 0)
        return cls(model=ModelChoice(**model), input=InputSpec(**inp), scaling=ScalingSpec(**scaling),
                   **{k: options[k] for k in _TOP_KEYS if k in options})
