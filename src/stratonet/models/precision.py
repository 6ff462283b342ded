"""Numeric precision of deep extraction: fp32, bf16 (autocast) or int8 (static quantisation), and how ``auto`` picks.

``auto`` picks bf16 on CUDA and on CPUs with native bf16 arithmetic (the ``avx512_bf16`` or ``amx_bf16`` flags of
``/proc/cpuinfo``), else fp32. bf16 runs through torch's own autocast (oneDNN kernels on CPU); int8 is PyTorch's FX
graph-mode static quantisation (``x86`` backend: fbgemm + oneDNN), calibrated on a sample of images.

int8 is **not offered** by ``extract deep``: measured here it ran only 1.15x faster than bf16 (target 1.5x), and
only 85 % of the features kept a per-feature cosine >= 0.99 to fp32 (benchmarks/RESULTS.md, tests/models/test_precision.py).
:func:`quantize_int8` and ``Embedder(precision="int8").calibrate(...)`` stay for the benchmark and for that test.

The CPU-feature probe is a plain function (:func:`cpu_flags`) so that tests can replace it.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass

import torch
from torch import fx, nn

from stratonet.core.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# Model classes whose bf16 features were checked against fp32 (tests/models/test_precision.py, untrained StratoNet-50;
# benchmarks/quality/bench_precision_trained.py, StratoNet-50 trained 3 epochs: per-image cosine >= 0.9999, 99.3 % of the
# features >= 0.999 per-feature cosine, worst strong feature 0.997). EfficientNet-Lite0 with its ImageNet weights
# failed (per-image cosine 0.973 in one session, 0.996 in another; only 11-16 % of its features within per-feature
# cosine 0.999) and was only 1.1x faster in bf16, so ``auto`` keeps other models in fp32.
BF16_CHECKED_MODELS = ("TapResNet",)


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags of the first processor in ``/proc/cpuinfo`` (empty where the file is absent)."""
    try:
        with open(cpuinfo) as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_native_bf16(flags: set[str] | None = None) -> str | None:
    """The flag that gives this CPU native bf16 arithmetic (``avx512_bf16`` or ``amx_bf16``), or None."""
    flags = cpu_flags() if flags is None else flags
    for flag in NATIVE_BF16_FLAGS:
        if flag in flags:
            return flag
    return None


@dataclass(frozen=True)
class Precision:
    """A resolved precision: what runs (``fp32``/``bf16``/``int8``), what was asked for, and why."""

    name: str
    requested: str
    reason: str

    def as_dict(self) -> dict:
        return {"precision": self.name, "requested": self.requested, "reason": self.reason}


def resolve_precision(requested: str, device: torch.device, model: nn.Module | None = None) -> Precision:
    """Turn ``--precision`` into the precision that runs on ``device`` for ``model``.

    Parameters
    ----------
    requested : {"auto", "fp32", "bf16"}
    device : torch.device
    model : nn.Module, optional
        The network: ``auto`` picks bf16 only for model classes in :data:`BF16_CHECKED_MODELS`.

    Returns
    -------
    Precision

    Raises
    ------
    ConfigError
        An unknown precision, or int8 (measured, not offered: see the module docstring).
    """
    if requested == "int8":
        raise ConfigError("--precision int8 is not offered: measured only 1.15x faster than bf16 on CPU and less "
                          "accurate than the tolerance (see benchmarks/RESULTS.md); use bf16")
    if requested not in PRECISIONS:
        raise ConfigError(f"unknown precision '{requested}' (use {', '.join(PRECISIONS)})")
    flag = None if device.type == "cuda" else cpu_native_bf16(cpu_flags())
    unchecked = model is not None and type(model).__name__ not in BF16_CHECKED_MODELS
    if requested == "auto" and unchecked:
        return Precision("fp32", requested, f"auto: bf16 is not validated for {type(model).__name__} models "
                                            "(EfficientNet-Lite0 measured per-image cosine 0.973 to fp32)")
    if requested == "auto":
        if device.type == "cuda":
            return Precision("bf16", requested, "auto: CUDA device")
        if flag:
            return Precision("bf16", requested, f"auto: CPU has native bf16 ({flag})")
        return Precision("fp32", requested, "auto: CPU lacks native bf16 (no avx512_bf16 or amx_bf16 flag)")
    if requested == "bf16" and unchecked:
        return Precision("bf16", requested, f"asked for; WARNING: bf16 features of {type(model).__name__} models "
                                            "were not within tolerance of fp32 (EfficientNet-Lite0: per-image "
                                            "cosine 0.973 on the real JUMP FOV)")
    if requested == "bf16" and device.type == "cpu" and not flag:
        return Precision("bf16", requested, "asked for; this CPU lacks native bf16, so it is emulated (slow)")
    return Precision(requested, requested, "asked for")


def resolve_train_precision(requested: str, device: torch.device, bf16: bool = True,
                            model: nn.Module | None = None) -> Precision:
    """``train --precision``: the autocast precision of training (weights, optimiser state and loss stay fp32).

    ``auto`` picks bf16 autocast on CUDA and on CPUs with native bf16 (the same probe as extraction), else fp32;
    ``--no-bf16`` (the older switch) turns ``auto`` into fp32. Mixed-precision training keeps fp32 master weights,
    and its checkpoints are stored in fp32, so accuracy does not depend on the model class; speed does. Given a
    ``model`` on CPU, ``auto`` keeps fp32 for classes outside :data:`BF16_CHECKED_MODELS`: a ``train ssl`` step of
    EfficientNet-Lite0 (batch 32, 96 px views) took 1.37 s in bf16 and 0.93 s in fp32 on this 2-core machine,
    StratoNet-18 0.65 s and 1.07 s (benchmarks/quality/ssl_protocol.md).
    """
    if requested not in PRECISIONS:
        raise ConfigError(f"unknown precision '{requested}' (use {', '.join(PRECISIONS)})")
    flag = None if device.type == "cuda" else cpu_native_bf16(cpu_flags())
    if requested == "auto":
        if not bf16:
            return Precision("fp32", requested, "auto: --no-bf16 given")
        if device.type == "cuda":
            return Precision("bf16", requested, "auto: CUDA device")
        if flag and model is not None and type(model).__name__ not in BF16_CHECKED_MODELS:
            return Precision("fp32", requested, f"auto: bf16 training of {type(model).__name__} was slower than "
                                                "fp32 on CPU")
        if flag:
            return Precision("bf16", requested, f"auto: CPU has native bf16 ({flag})")
        return Precision("fp32", requested, "auto: CPU lacks native bf16 (no avx512_bf16 or amx_bf16 flag)")
    if requested == "bf16" and device.type == "cpu" and not flag:
        return Precision("bf16", requested, "asked for; this CPU lacks native bf16, so it is emulated (slow)")
    return Precision(requested, requested, "asked for")


# Measured costs behind the CPU defaults (benchmarks/RESULTS.md, issue 13): decoding a 1080x1080 uint16 channel image
# to 224 px takes about 5 ms on one core (plane-at-a-time path), while StratoNet-50 takes about 40 core-ms per channel
# image in bf16 and 65 in fp32 at batch 16. Decode is thus 1/9 (bf16) to 1/14 (fp32) of the work.
DECODE_CORES_PER_WORKER = 8  # one decode process per 8 cores on machines big enough for processes to pay off
CPU_BATCH_SIZE = 16  # channel images per forward pass on CPU: 1.6-2x faster than 64 (cache-resident activations)
CUDA_BATCH_SIZE = 64


def default_batch_size(device: torch.device) -> int:
    """Channel images per forward pass: 16 on CPU (both precisions; 32 and 64 were 1.6-2x slower on the 2-core
    machine of benchmarks/RESULTS.md), 64 on CUDA."""
    return CUDA_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE


def default_threads_workers(precision: str, device: torch.device, cores: int | None = None,
                            workers: int | None = None) -> tuple[int, int]:
    """Model intra-op threads and DataLoader decode worker processes (CPU defaults from measurements, RESULTS.md).

    CUDA: all but one core decode (at most 16 workers) and the model keeps torch's threads.

    CPU: below 8 cores no worker process: the main process decodes on as many threads as the model uses, in line
    or ahead of the model by the machine's load (:class:`stratonet.extract.deep.dataset.ParallelDecode`); decoding
    costs about 2.2-2.6 core-ms per 1080x1080 channel image (read included) against about 35 (bf16) to 75
    (fp32) core-ms for StratoNet-50, so it is not given a core of its own. From 8 cores one worker process (one
    thread each) per 8 cores, and the model gets the cores they leave. Model threads + worker processes never exceed the cores.
    Measured on the 2-core machine of benchmarks/RESULTS.md (bf16, batch 16, end to end, three quiet runs): 2 model
    threads + a decode thread 28.0, 30.8 and 33.8 channel-images/s, 1 thread + a decode thread 29.7, 24.3 and
    29.3, the previous default (1 thread + 1 worker, batch 64) 15.0, 16.6 and 16.9. Under load (average 4 to 8)
    1 thread + a decode thread was 1.6-2x faster than 2 threads (pass ``threads=1`` on a heavily shared
    machine). The rule does not depend on the precision. ``workers`` given: the model gets the cores they leave.
    """
    cores = cores or os.cpu_count() or 1
    if device.type == "cuda":
        return torch.get_num_threads(), max(1, min(16, cores - 1)) if workers is None else int(workers)
    if workers is None:
        workers = 0 if cores < DECODE_CORES_PER_WORKER else cores // DECODE_CORES_PER_WORKER
    workers = int(workers)
    return max(1, cores - workers), workers  # workers == 0: the decode thread shares the cores


# --- int8 ------------------------------------------------------------------------------------------------------------
class _TapTracer(fx.Tracer):
    """Traces ``forward_taps`` of a TapResNet without its hooks: a tapped module's output is pooled in the graph."""

    def __init__(self, net, prefix: str):
        super().__init__()
        self.net = net
        self.prefix = prefix
        self.by_module = {module: tap for tap, module in net.tap_map.items()}

    def call_module(self, mod, forward, args, kwargs):
        out = super().call_module(mod, forward, args, kwargs)
        tap = self.by_module.get(self.path_of_module(mod).removeprefix(self.prefix))
        if tap is not None:
            self.net._pooled[tap] = out.float().mean((2, 3))
        return out


class _Taps(nn.Module):
    """``forward(x)`` -> tuple of pooled taps in tap order (an FX-traceable wrapper of a TapResNet)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor):
        taps = self.net.forward_taps(x)
        return tuple(taps[t] for t in self.net.tap_names)


def tap_graph(net) -> fx.GraphModule:
    """A hook-free FX graph of a (BN-folded) TapResNet: ``x`` -> tuple of ``(B, C_tap)`` pooled taps."""
    net = copy.deepcopy(net).eval()
    for hook in net._hooks:
        hook.remove()
    net._hooks = []
    wrapper = _Taps(net).eval()
    graph = _TapTracer(net, "net.").trace(wrapper)
    return fx.GraphModule(wrapper, graph)


def quantize_int8(net, calibration: list[torch.Tensor]) -> fx.GraphModule:
    """Static int8 quantisation of a TapResNet (FX graph mode, ``x86`` backend), calibrated on ``calibration``.

    Parameters
    ----------
    net : TapResNet
        BN-folded, eval mode.
    calibration : list of Tensor
        Normalised model-ready batches ``(B, in_chans, S, S)`` from the user's images.

    Returns
    -------
    GraphModule
        ``x`` -> tuple of pooled taps (float32), in tap order. The ECA gates stay in float (their 1-D convolution
        over a handful of channels gains nothing from int8 and costs accuracy).
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    if not calibration:
        raise ConfigError("int8 needs calibration images, and none could be read")
    if "x86" not in torch.backends.quantized.supported_engines:
        raise ConfigError("--precision int8 needs PyTorch's x86 quantised engine, which this build lacks")
    torch.backends.quantized.engine = "x86"
    graph = tap_graph(net)
    qconfig = get_default_qconfig_mapping("x86")
    for name, module in graph.named_modules():
        if name.endswith(".attn"):
            qconfig = qconfig.set_module_name(name, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FX quantisation's deprecation notice
        prepared = prepare_fx(graph, qconfig, example_inputs=(calibration[0][:1],))
        with torch.inference_mode():
            for batch in calibration:
                prepared(batch)
        return convert_fx(prepared)

