"""Fast per-channel preprocessing for deep extraction: exact percentile rescale to [0, 1] and anti-aliased resize.

Same result as :func:`stratonet.preprocess.rescale_percentile` (numpy's linear percentiles), but percentiles of
integer images come from a histogram (O(n), no sort), and resizing uses torch's separable anti-aliased bilinear
filter, which is much faster than scikit-image's Gaussian pre-filter.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def channel_percentiles(plane: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of one 2-D plane (numpy's default linear interpolation).

    Planes holding non-negative integers below 65536 (uint8/uint16 images, also when stored as float32) use a
    histogram; anything else ``np.percentile``.
    """
    flat = plane.reshape(-1)
    n = flat.size
    if n == 0:
        return 0.0, 0.0
    if flat.dtype.kind == "f":
        lo_v, hi_v = float(flat.min()), float(flat.max())
        if lo_v >= 0 and hi_v < 65536:
            as_int = flat.astype(np.uint16)
            if np.array_equal(as_int, flat):
                flat = as_int
    if flat.dtype.kind in "ui" and flat.dtype.itemsize <= 2 and (flat.dtype.kind == "u" or flat.min() >= 0):
        counts = np.bincount(flat.astype(np.intp, copy=False) if flat.dtype.kind == "i" else flat)
        cum = np.cumsum(counts)
        out = []
        for q in (low, high):
            pos = q / 100.0 * (n - 1)
            k = int(np.floor(pos))
            frac = pos - k
            v0 = int(np.searchsorted(cum, k, side="right"))
            v1 = int(np.searchsorted(cum, min(k + 1, n - 1), side="right"))
            out.append(v0 + (v1 - v0) * frac)
        return float(out[0]), float(out[1])
    lo, hi = np.percentile(flat, [low, high])
    return float(lo), float(hi)


def rescale_to_unit(img: np.ndarray, low: float = 0.1, high: float = 99.9,
                    bounds: np.ndarray | None = None) -> torch.Tensor:
    """``(C, H, W)`` array -> float32 tensor rescaled per channel to [0, 1] between percentiles, clipped.

    ``bounds`` (``(C, 2)``: low and high value per channel, e.g. plate percentiles or ``[0, 65535]``) replaces the
    image's own percentiles. A flat channel (``high <= low``) becomes all zeros.
    """
    x = np.asarray(img)
    if x.ndim == 2:
        x = x[None]
    if bounds is None:
        bounds = [channel_percentiles(p, low, high) for p in x]
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    lo = torch.tensor([b[0] for b in bounds], dtype=torch.float32)[:, None, None]
    hi = torch.tensor([b[1] for b in bounds], dtype=torch.float32)[:, None, None]
    flat = hi <= lo
    scale = torch.where(flat, torch.ones_like(hi), hi - lo)
    t = t.sub_(lo).div_(scale).clamp_(0.0, 1.0)
    if flat.any():
        t[flat.reshape(-1)] = 0.0
    return t


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(N, C, H, W)`` to ``size`` x ``size`` (bilinear, anti-aliased when shrinking); no-op if equal."""
    if x.shape[-2:] == (size, size):
        return x.contiguous()
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
