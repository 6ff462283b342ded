"""The inference engine: channel-specific batches through a tapped model, as fast as the device allows.

Each channel image goes through the network alone: ``(N, C, S, S)`` units become ``N * C`` single-channel images,
replicated to a 3-channel stem (or fed to a 1-channel stem), normalised, and run in large batches under
``torch.inference_mode`` in channels_last layout, at a precision chosen by :mod:`stratonet.models.precision`:
fp32, bf16 autocast (CUDA, or oneDNN on CPU) or int8 (static quantisation calibrated on the user's images).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from stratonet.core.errors import ConfigError
from stratonet.core.progress import console


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ConfigError when CUDA is asked for but absent."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA device is available (use --device cpu)")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ConfigError(f"unknown device '{device}' (use auto, cpu or cuda)")
    return torch.device(device)


def default_workers(device: torch.device) -> int:
    """DataLoader worker processes by default (see :func:`stratonet.models.precision.default_threads_workers`)."""
    from stratonet.models.precision import default_threads_workers

    return default_threads_workers("auto", device, cores=os.cpu_count() or 1)[1]


class Embedder:
    """Run ``(N, C, S, S)`` float tensors in [0, 1] through a tapped model channel by channel.

    Parameters
    ----------
    model : TapResNet
    device : torch.device
    batch_size : int
        Channel images per forward pass.
    mean, std : sequence of float, optional
        Normalisation per stem channel (ImageNet by default); None for none.
    compile : bool
        ``torch.compile`` the tapped forward (batches are padded to a fixed size to avoid recompiles).
    fuse_bn : bool
        Fold BatchNorm into the preceding convolutions (on a copy of the model): ~1.2x faster on CPU, features
        equal up to float rounding (~3e-7 relative).
    precision : {"fp32", "bf16", "int8"}, optional
        A resolved precision (see :func:`stratonet.models.precision.resolve_precision`); None keeps the old
        default (bf16 autocast on CUDA, fp32 on CPU). int8 needs :meth:`calibrate` before the first batch.
    """

    def __init__(self, model, device: torch.device, batch_size: int = 64, mean=None, std=None, compile: bool = False,
                 fuse_bn: bool = True, precision: str | None = None):
        self.device = device
        if fuse_bn:
            import copy

            model = copy.deepcopy(model).eval().fuse_batchnorm()
        self.fuse_bn = fuse_bn
        self.batch_size = int(batch_size)
        self.in_chans = int(model.in_chans)
        self.model = model.to(device).eval().to(memory_format=torch.channels_last)
        self.tap_names = list(model.tap_names)
        self.dims = [int(f["channels"]) for f in model.feature_info]
        k = self.in_chans
        if mean is not None:
            m = torch.tensor(mean, dtype=torch.float32)
            s = torch.tensor(std, dtype=torch.float32)
            if k == 1 and m.numel() > 1:
                m, s = m.mean().reshape(1), s.mean().reshape(1)
            self.mean = m.reshape(1, k, 1, 1).to(device)
            self.std = s.reshape(1, k, 1, 1).to(device)
        else:
            self.mean = self.std = None
        if precision is None:
            precision = "bf16" if device.type == "cuda" else "fp32"
        if precision not in ("fp32", "bf16", "int8"):
            raise ConfigError(f"unknown precision '{precision}' for the embedder (use fp32, bf16 or int8)")
        if precision == "int8" and (device.type != "cpu" or compile or not fuse_bn):
            raise ConfigError("int8 runs on CPU, eagerly, with BatchNorm folded (drop --compile/--no-fuse-bn)")
        self.precision = precision
        self.autocast = precision == "bf16"
        self.calibrated = False
        self.compiled = bool(compile)
        self._forward = model.forward_taps
        if compile:
            self._forward = torch.compile(model.forward_taps, dynamic=False)

    @property
    def dim(self) -> int:
        """Features per channel image (all taps)."""
        return sum(self.dims)

    def _normalise(self, chunk: torch.Tensor) -> torch.Tensor:
        x = chunk.to(self.device, non_blocking=True).expand(-1, self.in_chans, -1, -1)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def calibrate(self, images: torch.Tensor) -> "Embedder":
        """int8: quantise the model, calibrating its activation ranges on ``(N, 1, S, S)`` images in [0, 1].

        No-op at other precisions.
        """
        if self.precision != "int8":
            return self
        from stratonet.models.precision import quantize_int8

        batches = [self._normalise(images[i: i + self.batch_size]) for i in range(0, images.shape[0], self.batch_size)]
        with torch.inference_mode(False), torch.no_grad():  # the observers update buffers
            quantized = quantize_int8(self.model, [b.clone() for b in batches])
        names = self.tap_names
        self._forward = lambda x: dict(zip(names, quantized(x)))
        self.calibrated = True
        return self

    def _run(self, chunk: torch.Tensor) -> torch.Tensor:
        if self.precision == "int8" and not self.calibrated:
            raise RuntimeError("int8 embedder used before calibrate()")
        n = chunk.shape[0]
        if self.compiled and n < self.batch_size:  # fixed shapes: no recompilation for the last batch
            pad = chunk.new_zeros((self.batch_size - n,) + tuple(chunk.shape[1:]))
            chunk = torch.cat([chunk, pad])
        x = self._normalise(chunk)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            taps = self._forward(x)
        feats = torch.cat([taps[t].float() for t in self.tap_names], dim=1)
        return feats[:n]

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> np.ndarray:
        """``(N, C, S, S)`` -> ``(N, C, D)`` float32 features (taps concatenated in tap order)."""
        n, c = x.shape[:2]
        flat = x.reshape(n * c, 1, *x.shape[2:])
        if flat.device.type == "cpu" and self.device.type == "cuda" and not flat.is_pinned():
            flat = flat.pin_memory()
        outs = [self._run(flat[i: i + self.batch_size]) for i in range(0, flat.shape[0], self.batch_size)]
        feats = torch.cat(outs).cpu().numpy() if outs else np.zeros((0, self.dim), np.float32)
        return feats.reshape(n, c, self.dim)


def try_compile_warmup(embedder: Embedder, size: int | tuple[int, int]) -> Embedder:
    """Compile on a dummy batch; on failure (no C++ compiler, unsupported op) fall back to eager with a warning."""
    if not embedder.compiled:
        return embedder
    h, w = (size, size) if isinstance(size, int) else size
    try:
        embedder(torch.zeros(1, 1, h, w))
    except Exception as exc:  # inductor needs a toolchain; eager is always correct
        console.print(f"[yellow]warning:[/] torch.compile failed ({type(exc).__name__}: {str(exc)[:120]}); "
                      "running eagerly")
        embedder.compiled = False
        embedder._forward = embedder.model.forward_taps
    return embedder
