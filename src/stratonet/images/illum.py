"""Illumination correction functions, CellProfiler style (CorrectIlluminationCalculate, "All" images per plate).

Per plate and channel: the mean of all images (streamed as a running sum, one site in memory at a time), smoothed
by a large median filter (fast: block-average down, median, bilinear back up) or a Gaussian, then divided by its
robust minimum (the 2nd percentile, values below it raised to it) so the function is >= 1. Images are corrected
by dividing by the function (:func:`stratonet.images.io.load_index_row` does it for rows with ``Illum_<Channel>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.index.schema import ILLUM_PREFIX, STACK_PATH, channels_of, site_name, site_paths
from stratonet.images.io import load_site
from stratonet.core.progress import track

FILTERS = ("median", "gaussian")
_WORK_SIZE = 12  # filter width, in pixels of the block-averaged image, that the fast path aims for


def auto_filter_size(shape: Sequence[int]) -> int:
    """Default smoothing size: one eighth of the shorter image side, at least 15 pixels, odd."""
    size = max(15, int(min(shape[-2:]) // 8))
    return size | 1


def smooth(image: np.ndarray, method: str = "median", size: int | None = None) -> np.ndarray:
    """Smooth a 2-D image with a large filter of width ``size`` pixels.

    The image is block-averaged by a factor chosen so that the filter is about 12 pixels wide, filtered there
    (median: a ``size/factor`` square window; gaussian: sigma = size / 2.35, i.e. ``size`` is the FWHM) and
    resized back with bilinear interpolation. Large filters thus cost milliseconds, not minutes.
    """
    from skimage.transform import resize

    if method not in FILTERS:
        raise ConfigError(f"unknown illumination filter '{method}' (choose from {', '.join(FILTERS)})")
    img = np.asarray(image, dtype=np.float64)
    size = int(size or auto_filter_size(img.shape))
    if size < 1:
        raise ConfigError(f"illumination filter size must be >= 1, got {size}")
    factor = max(1, size // _WORK_SIZE)
    h, w = img.shape
    hh, ww = -(-h // factor) * factor, -(-w // factor) * factor
    padded = np.pad(img, ((0, hh - h), (0, ww - w)), mode="reflect") if (hh, ww) != (h, w) else img
    small = padded.reshape(hh // factor, factor, ww // factor, factor).mean(axis=(1, 3))
    if method == "median":
        k = max(1, int(round(size / factor))) | 1
        small = ndimage.median_filter(small, size=k, mode="reflect")
    else:
        small = ndimage.gaussian_filter(small, sigma=size / 2.35 / factor, mode="reflect")
    if factor == 1:
        return small[:h, :w]
    big = resize(small, (hh, ww), order=1, mode="edge", anti_aliasing=False, preserve_range=True)
    return big[:h, :w]


def robust_minimum_rescale(function: np.ndarray, percentile: float = 2.0) -> np.ndarray:
    """Divide by the ``percentile``-th value after raising lower values to it, so the result is >= 1."""
    f = np.asarray(function, dtype=np.float64)
    lo = float(np.percentile(f, percentile))
    if not np.isfinite(lo) or lo <= 0:
        lo = float(f[f > 0].min()) if np.any(f > 0) else 1.0
    return (np.maximum(f, lo) / lo).astype(np.float32)


def mean_images(rows: pd.DataFrame, channels: Sequence[str], description: str = "illum") -> np.ndarray:
    """Per-channel mean of the rows' images, ``(C, H, W)`` float64, with one site in memory at a time."""
    total: np.ndarray | None = None
    n = 0
    for _, row in track(rows.iterrows(), description, total=len(rows)):
        img = load_site(site_paths(row, list(channels)), channels, site=site_name(row), dtype=np.float64)
        if total is None:
            total = np.zeros_like(img)
        elif img.shape != total.shape:
            raise StratoNetError(
                f"site {site_name(row)}: images are {img.shape[1:]}, other sites of the plate {total.shape[1:]}"
            )
        total += img
        n += 1
    if total is None:
        raise StratoNetError("no images to compute an illumination function from")
    return total / n


def compute_illum(
    index: pd.DataFrame,
    out_dir: str | Path,
    channels: Sequence[str] | None = None,
    method: str = "median",
    size: int | None = None,
) -> pd.DataFrame:
    """Compute illumination functions per plate and channel; return the index with ``Illum_<Channel>`` columns.

    Parameters
    ----------
    index : DataFrame
        Site index (not array stacks).
    out_dir : path
        Functions are saved as ``<out_dir>/illum/<plate>_Illum<Channel>.npy`` (float32).
    channels : sequence of str, optional
        Default: every channel of the index.
    method : {"median", "gaussian"}
    size : int, optional
        Filter width in pixels; default :func:`auto_filter_size`.
    """
    if STACK_PATH in index.columns:
        raise ConfigError("illumination correction needs a site index with Path_<Channel> columns, not array stacks")
    if method not in FILTERS:
        raise ConfigError(f"unknown illumination filter '{method}' (choose from {', '.join(FILTERS)})")
    channels = list(channels or channels_of(index))
    folder = Path(out_dir) / "illum"
    folder.mkdir(parents=True, exist_ok=True)
    out = index.copy()
    for ch in channels:
        out[f"{ILLUM_PREFIX}{ch}"] = None
    for plate, rows in index.groupby(index["Metadata_Plate"].astype(str), sort=False):
        mean = mean_images(rows, channels, description=f"illum {plate}")
        for i, ch in enumerate(channels):
            fn = robust_minimum_rescale(smooth(mean[i], method=method, size=size))
            path = folder / f"{plate}_Illum{ch}.npy"
            np.save(path, fn)
            out.loc[rows.index, f"{ILLUM_PREFIX}{ch}"] = str(path.resolve())
    return out
