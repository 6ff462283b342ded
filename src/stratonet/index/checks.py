"""Checks run while indexing: files exist, image headers are readable, a site's channels agree in size.

Pixels are never decoded here: TIFF headers are parsed with tifffile, ``.npy`` headers with numpy's memory map,
PNG/JPEG headers with Pillow. Remote files (fsspec URLs) are only checked for existence. Plane references into
OME-Zarr images or vendor files (:mod:`stratonet.images.planes`) are checked from their metadata, local or remote.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from stratonet.core.errors import InputFileError, SiteError, StratoNetError
from stratonet.index.schema import (
    ILLUM_PREFIX, PATH_PREFIX, STACK_CHANNELS, STACK_PATH, channels_of, site_name, stack_layout,
)
from stratonet.images.planes import parse_ref, plane_shape
from stratonet.core.remote import is_url
from stratonet.core.progress import track


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""


def url_exists(url: str) -> bool:
    """True when an fsspec URL exists; network errors raise "cannot reach HOST" (see :mod:`stratonet.core.remote`)."""
    from stratonet.core.remote import exists

    return exists(url)


def image_shape(path: str) -> tuple[int, ...] | None:
    """Shape of an image file read from its header only; ``None`` for a remote file that exists.

    Raises
    ------
    InputFileError
        If the file is missing, truncated, corrupt or of an unknown type.
    """
    spath = str(path)
    ref = parse_ref(spath)
    if ref is not None:
        return plane_shape(ref)  # from the image's metadata, local or remote
    if is_url(spath):
        if not url_exists(spath):
            raise InputFileError(spath, "file not found")
        return None
    if not os.path.isfile(spath):
        raise InputFileError(spath, "file not found")
    lower = spath.lower()
    try:
        if lower.endswith((".tif", ".tiff")):
            return _tiff_shape(spath)
        if lower.endswith(".npy"):
            return tuple(np.load(spath, mmap_mode="r", allow_pickle=False).shape)
        if lower.endswith((".png", ".jpg", ".jpeg", ".bmp")):
            from PIL import Image

            with Image.open(spath) as im:
                w, h = im.size
                return (h, w) if len(im.getbands()) == 1 else (h, w, len(im.getbands()))
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(spath, f"corrupt or unreadable image ({type(exc).__name__}: {exc})") from exc
    raise InputFileError(spath, "unknown image type (expected .tif, .tiff, .png, .jpg or .npy)")


def _tiff_shape(path: str) -> tuple[int, ...]:
    import tifffile

    size = os.path.getsize(path)
    with tifffile.TiffFile(path) as tf:
        if not tf.pages:
            raise InputFileError(path, "TIFF has no image pages")
        page = tf.pages[0]
        ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts)]
        if ends and max(ends) > size:
            raise InputFileError(path, f"truncated TIFF (image data ends at byte {max(ends)}, file has {size})")
        if len(tf.pages) > 1:
            return tuple(tf.series[0].shape)
        return tuple(page.shape)


def _require_plane(shape: tuple[int, ...], path: str, site: str) -> tuple[int, int]:
    """(H, W) of a file that holds one 2-D plane; a z-stack, time series or RGB file is a one-line SiteError."""
    dims = tuple(d for d in shape if d != 1)
    if len(dims) != 2:
        kind = "an RGB(A) image" if len(dims) == 3 and dims[-1] in (3, 4) else "a stack of planes"
        raise SiteError(site, f"image {path} has shape {shape}: {kind}, but each channel needs one 2-D plane "
                              "(split it into planes, or index (C, H, W) stacks with --layout arrays)")
    return dims  # type: ignore[return-value]


def check_site(row: pd.Series, channels: list[str], check_files: bool = True) -> None:
    """Raise a one-line error if a site lacks a channel, a file is missing or corrupt, or sizes differ."""
    site = site_name(row)
    shapes: dict[str, tuple[int, ...]] = {}
    for ch in channels:
        p = row.get(f"{PATH_PREFIX}{ch}")
        if _is_missing(p):
            present = [c for c in channels if not _is_missing(row.get(f"{PATH_PREFIX}{c}"))]
            raise SiteError(site, f"no image for channel '{ch}' (has {present})")
        if check_files:
            shape = image_shape(str(p))
            if shape is not None:
                shapes[ch] = _require_plane(shape, str(p), site)
        illum = row.get(f"{ILLUM_PREFIX}{ch}")
        if check_files and not _is_missing(illum):
            ishape = image_shape(str(illum))
            if ishape is not None:
                _require_plane(ishape, str(illum), site)
    if len(set(shapes.values())) > 1:
        desc = ", ".join(f"{ch}={s[0]}x{s[1]}" for ch, s in shapes.items())
        raise SiteError(site, f"channel images differ in size ({desc})")


def check_stack(row: pd.Series, check_files: bool = True) -> None:
    """Raise a one-line error if an array-stack row's file is missing, corrupt or has the wrong channel count."""
    site = site_name(row)
    p = row.get(STACK_PATH)
    if _is_missing(p):
        raise SiteError(site, "no stack file")
    if not check_files:
        return
    shape = image_shape(str(p))
    n = len(str(row[STACK_CHANNELS]).split("|"))
    if shape is not None and stack_layout(tuple(shape), n) is None:
        raise SiteError(site, f"stack {p} has shape {shape}, expected ({n}, H, W) or (H, W, {n}) for channels "
                              f"{row[STACK_CHANNELS]}")


def check_index(
    index: pd.DataFrame,
    check_files: bool = True,
    on_error: str = "fail",
    record: Callable[[str, str], None] | None = None,
) -> pd.DataFrame:
    """Check every row of an index; return the rows that passed.

    Parameters
    ----------
    index : DataFrame
        Index rows (see :mod:`stratonet.index.schema`).
    check_files : bool
        Read file headers (local) or check existence (URLs). Completeness of channels is always checked.
    on_error : {"fail", "skip"}
        ``fail`` raises the first error; ``skip`` calls ``record(site, message)`` and drops the row.
    record : callable, optional
        Receives ``(site, message)`` for each dropped row.
    """
    if on_error not in ("fail", "skip"):
        raise StratoNetError(f"on_error must be 'fail' or 'skip', got '{on_error}'")
    stacked = STACK_PATH in index.columns
    channels = None if stacked else channels_of(index)
    keep = np.ones(len(index), dtype=bool)
    desc = "checking files" if check_files else "checking sites"
    for i, (_, row) in enumerate(track(index.iterrows(), desc, total=len(index))):
        try:
            if stacked:
                check_stack(row, check_files)
            else:
                check_site(row, channels, check_files)
        except StratoNetError as exc:
            if on_error == "fail":
                raise
            keep[i] = False
            if record is not None:
                record(site_name(row), str(exc))
    return index.loc[keep].reset_index(drop=True)


def require_folder(folder: Path, what: str = "images") -> Path:
    """One-line error if ``folder`` does not exist, is not a folder, or is empty."""
    folder = Path(folder)
    if not folder.exists():
        raise InputFileError(str(folder), "folder not found")
    if not folder.is_dir():
        raise InputFileError(str(folder), f"expected a folder of {what}")
    if not any(folder.iterdir()):
        raise InputFileError(str(folder), f"folder is empty (no {what})")
    return folder
