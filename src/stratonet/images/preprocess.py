"""Image preprocessing on numpy arrays: percentile rescale to [0, 1], anti-aliased resize, tiles and crops.

The percentile rescale is :func:`stratonet.images.transforms.rescale_to_unit` (one implementation for training,
extraction and the pixel baseline); this module adds the numpy-facing names, tiles and crops.

All functions take ``(H, W)`` or ``(C, H, W)`` float arrays and work per channel.
Illumination correction lives in :mod:`stratonet.images.illum`.
"""

from __future__ import annotations

import numpy as np


def rescale_percentile(img: np.ndarray, low: float = 0.1, high: float = 99.9) -> np.ndarray:
    """Rescale each channel to [0, 1] between its ``low`` and ``high`` percentiles, clipping outside.

    Parameters
    ----------
    img : ndarray, shape (H, W) or (C, H, W)
    low, high : float
        Percentiles in [0, 100], ``low < high``. ``0`` and ``100`` give min-max scaling.

    Returns
    -------
    ndarray of float32, same shape. A flat channel becomes all zeros.
    """
    if not 0 <= low < high <= 100:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
    from stratonet.images.transforms import rescale_to_unit  # the one implementation (extraction and training)

    x = np.asarray(img)
    out = rescale_to_unit(x, low, high).numpy()
    return out[0] if x.ndim == 2 else out


def resize(img: np.ndarray, size: int | tuple[int, int], anti_aliasing: bool = True) -> np.ndarray:
    """Resize each channel to ``size`` (an int gives a square) with anti-aliasing when shrinking.

    Uses scikit-image's ``resize`` (Gaussian pre-filter, bilinear interpolation). This is the pixel baseline's
    resize (``extract pixel``), kept so its features stay as they were; model inputs, in extraction and training
    alike, are resized by :func:`stratonet.images.transforms.resize_image` / ``resize_batch``.
    """
    from skimage.transform import resize as _resize

    hw = (size, size) if isinstance(size, int) else tuple(size)
    x = np.asarray(img, dtype=np.float32)
    if x.ndim == 2:
        return _resize(x, hw, order=1, anti_aliasing=anti_aliasing, preserve_range=True).astype(np.float32)
    return np.stack(
        [_resize(c, hw, order=1, anti_aliasing=anti_aliasing, preserve_range=True) for c in x]
    ).astype(np.float32)


def tile_grid(img: np.ndarray, tile: int, stride: int | None = None) -> np.ndarray:
    """Cut ``(C, H, W)`` into a grid of ``tile`` x ``tile`` crops at native resolution.

    Tiles that would run past the border are dropped; the grid is centred so the margins are equal.

    Returns
    -------
    ndarray, shape (N, C, tile, tile)
    """
    x = np.asarray(img)
    if x.ndim == 2:
        x = x[None]
    stride = stride or tile
    _, h, w = x.shape
    if tile > h or tile > w:
        raise ValueError(f"tile {tile} is larger than the image {h}x{w}")
    ny, nx = (h - tile) // stride + 1, (w - tile) // stride + 1
    oy = (h - ((ny - 1) * stride + tile)) // 2
    ox = (w - ((nx - 1) * stride + tile)) // 2
    tiles = [
        x[:, oy + i * stride: oy + i * stride + tile, ox + j * stride: ox + j * stride + tile]
        for i in range(ny) for j in range(nx)
    ]
    return np.stack(tiles)


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Central ``size`` x ``size`` crop of ``(H, W)`` or ``(C, H, W)``."""
    h, w = img.shape[-2:]
    if size > h or size > w:
        raise ValueError(f"crop {size} is larger than the image {h}x{w}")
    y0, x0 = (h - size) // 2, (w - size) // 2
    return img[..., y0: y0 + size, x0: x0 + size]


def crops_around(img: np.ndarray, centers_yx: np.ndarray, size: int) -> np.ndarray:
    """Square crops of ``size`` centred on each (y, x); the image is zero-padded so border cells keep their size.

    Parameters
    ----------
    img : ndarray, shape (C, H, W)
    centers_yx : ndarray, shape (N, 2)
    size : int

    Returns
    -------
    ndarray, shape (N, C, size, size)
    """
    x = np.asarray(img)
    if x.ndim == 2:
        x = x[None]
    half = size // 2
    padded = np.pad(x, ((0, 0), (half, size - half), (half, size - half)))
    c = np.rint(np.asarray(centers_yx, dtype=float)).astype(int).reshape(-1, 2)
    c[:, 0] = np.clip(c[:, 0], 0, x.shape[1] - 1)
    c[:, 1] = np.clip(c[:, 1], 0, x.shape[2] - 1)
    out = np.empty((len(c), x.shape[0], size, size), dtype=x.dtype)
    for i, (cy, cx) in enumerate(c):
        out[i] = padded[:, cy: cy + size, cx: cx + size]
    return out
