"""The image preparation of every model input: exact percentile rescale to [0, 1] and anti-aliased resize.

Extraction (``extract deep``) and training (``train``) both prepare images here (:func:`prepare_image`,
:func:`rescale_to_unit`, :func:`resize_image`), so a network sees the same pixels in training as in use.

Same result as :func:`stratonet.images.preprocess.rescale_percentile` (numpy's linear percentiles), but percentiles of
integer images come from a histogram (O(n), no sort), and resizing uses torch's separable anti-aliased bilinear
filter, which is much faster than scikit-image's Gaussian pre-filter.
"""

from __future__ import annotations

from functools import lru_cache

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
                    bounds: np.ndarray | None = None, inplace: bool = False) -> torch.Tensor:
    """``(C, H, W)`` array -> float32 tensor rescaled per channel to [0, 1] between percentiles, clipped.

    ``bounds`` (``(C, 2)``: low and high value per channel, e.g. plate percentiles or ``[0, 65535]``) replaces the
    image's own percentiles. A flat channel (``high <= low``) becomes all zeros. The input is left as it is unless
    ``inplace`` (a scratch buffer nobody else reads): a float32 input would otherwise share its memory with the
    result, and a later step reading the raw array would see rescaled values (issue 27, D10).
    """
    x = np.asarray(img)
    if x.ndim == 2:
        x = x[None]
    if bounds is None:
        bounds = [channel_percentiles(p, low, high) for p in x]
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    t = torch.from_numpy(x32 if inplace or not np.shares_memory(x32, x) else x32.copy())
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


def resize_image(img: np.ndarray, size: int) -> np.ndarray:
    """``(C, H, W)`` or ``(H, W)`` array -> float32 array resized to ``size`` x ``size`` by :func:`resize_batch`."""
    x = np.asarray(img, dtype=np.float32)
    squeeze = x.ndim == 2
    t = torch.from_numpy(np.ascontiguousarray(x[None] if squeeze else x))[None]
    out = resize_batch(t, int(size))[0].numpy()
    return out[0] if squeeze else out


def prepare_image(img: np.ndarray, size: int | None = None, low: float = 0.1, high: float = 99.9,
                  bounds: np.ndarray | None = None) -> torch.Tensor:
    """A ``(C, H, W)`` image as model input: rescaled per channel to [0, 1] (:func:`rescale_to_unit`), then resized
    to ``size`` x ``size`` (:func:`resize_batch`; None keeps the native size). Returns a float32 ``(C, S, S)``."""
    t = rescale_to_unit(img, low, high, bounds=bounds)
    return t if size is None else resize_batch(t[None], int(size))[0]


_BLOCK = 16  # output rows per banded product (measured: 8-32 within 1.3x; 16 fastest at 1080 -> 224 on 2 cores)


@lru_cache(maxsize=32)
def resize_weights(n_in: int, n_out: int) -> tuple[tuple[int, int, int, torch.Tensor], ...]:
    """Banded weights of a 1-D anti-aliased bilinear resize ``n_in`` -> ``n_out``, in blocks of output rows.

    The weights are torch's own: resizing the identity matrix along one axis with ``F.interpolate`` gives the
    ``(n_out, n_in)`` matrix ``W`` with ``resize(x) == W @ x`` along that axis. Returns one ``(start, in_lo,
    in_hi, W[start:start + b, in_lo:in_hi])`` per block of ``b`` output rows; ``[in_lo, in_hi)`` covers every
    non-zero weight of the block.
    """
    eye = torch.eye(n_in, dtype=torch.float32)[None, None]
    w = F.interpolate(eye, size=(n_out, n_in), mode="bilinear", antialias=True, align_corners=False)[0, 0]
    blocks = []
    for start in range(0, n_out, _BLOCK):
        rows = w[start:start + _BLOCK]
        cols = torch.nonzero(rows.abs().sum(0))[:, 0]
        lo, hi = int(cols.min()), int(cols.max()) + 1
        blocks.append((start, lo, hi, rows[:, lo:hi].contiguous()))
    return tuple(blocks)


def scale_resize_planes(planes: list[np.ndarray], bounds, size: int,
                        illum: list[np.ndarray | None] | None = None) -> torch.Tensor:
    """Stored planes -> ``(1, C, size, size)`` model input in one pass per plane, strip by strip.

    The same arithmetic as ``resize_batch(rescale_to_unit(planes / illum, bounds=bounds)[None], size)``, within
    float32 rounding (~3e-7, tests/extract/test_extract_deep.py), without any full-resolution float image: each block of
    output rows converts only the input rows it reads (a strip that stays in the CPU cache) to float32, divides it
    by the illumination function, rescales and clips it, and multiplies it by the block's resize weights; the
    horizontal resize then runs on the already shrunk rows. 1.4-1.9x less time than the two-step path on one
    thread (benchmarks/speed/bench_decode.py) and far less memory traffic, which matters when decoding shares the cores
    and caches with the model.

    Parameters
    ----------
    planes : list of 2-D arrays
        One plane per channel, equal shapes, any real dtype.
    bounds : sequence of (low, high)
        Per channel; values map to [0, 1] between them, clipped. ``high <= low`` gives an all-zero channel.
    size : int
        Output side.
    illum : list of 2-D arrays or None, optional
        Per channel illumination function (divided by ``max(fn, 1e-6)``), or None for none.
    """
    h, w = planes[0].shape
    rows_w = resize_weights(int(h), int(size))
    cols_w = resize_weights(int(w), int(size))
    n = len(planes)
    shrunk = torch.empty((n, size, w), dtype=torch.float32)
    widest = max(hi - lo for _, lo, hi, _ in rows_w)
    scratch = np.empty((widest, w), dtype=np.float32)
    for i, plane in enumerate(planes):
        lo_t = torch.tensor(float(bounds[i][0]), dtype=torch.float32)  # float32 bounds, as rescale_to_unit
        hi_t = torch.tensor(float(bounds[i][1]), dtype=torch.float32)
        scale_t = hi_t - lo_t
        if bool(hi_t <= lo_t):  # a flat channel
            shrunk[i] = 0.0
            continue
        fn = illum[i] if illum is not None else None
        for start, lo, hi, wb in rows_w:
            strip = scratch[: hi - lo]
            np.copyto(strip, plane[lo:hi], casting="unsafe")
            if fn is not None:
                np.divide(strip, np.maximum(fn[lo:hi], 1e-6), out=strip)
            t = torch.from_numpy(strip)
            t.sub_(lo_t).div_(scale_t).clamp_(0.0, 1.0)
            torch.matmul(wb, t, out=shrunk[i, start:start + wb.shape[0]])
    flat = shrunk.reshape(n * size, w)
    out = torch.empty((n * size, size), dtype=torch.float32)
    for start, lo, hi, wb in cols_w:
        out[:, start:start + wb.shape[0]] = flat[:, lo:hi] @ wb.T
    return out.reshape(1, n, size, size)
