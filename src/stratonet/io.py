"""Image I/O: TIFF (tifffile + imagecodecs: LZW, zstd, ...), PNG/JPEG and .npy, from local paths or fsspec URLs.

Reads are per file and lazy: nothing is read until a site is asked for.
"""

from __future__ import annotations

import io as _io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from stratonet.errors import InputFileError, SiteError

_URL_SCHEMES = ("s3://", "gs://", "http://", "https://", "memory://", "file://", "az://", "abfs://")


def is_url(path: str | Path) -> bool:
    """True when ``path`` is an fsspec URL rather than a local path."""
    return isinstance(path, str) and path.startswith(_URL_SCHEMES)


def _open_bytes(path: str) -> bytes:
    import fsspec

    kwargs = {"anon": True} if path.startswith("s3://") else {}
    try:
        with fsspec.open(path, "rb", **kwargs) as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise InputFileError(path, "file not found") from exc
    except Exception as exc:
        raise InputFileError(path, f"cannot open ({type(exc).__name__}: {exc})") from exc


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file as a numpy array in its stored dtype.

    Parameters
    ----------
    path : str or Path
        Local path or fsspec URL (``s3://`` is read anonymously). Suffixes: .tif/.tiff, .png, .jpg/.jpeg, .npy.

    Returns
    -------
    numpy.ndarray
        2-D for a plane, N-D for stacks.

    Raises
    ------
    InputFileError
        If the file is missing, corrupt or of an unknown type; the message names the file.
    """
    spath = str(path)
    lower = spath.lower().split("?")[0]
    remote = is_url(spath)
    if not remote and not Path(spath).exists():
        raise InputFileError(spath, "file not found")
    try:
        if lower.endswith((".tif", ".tiff")):
            import tifffile

            if remote:
                return tifffile.imread(_io.BytesIO(_open_bytes(spath)))
            return tifffile.imread(spath)
        if lower.endswith(".npy"):
            if remote:
                return np.load(_io.BytesIO(_open_bytes(spath)), allow_pickle=False)
            return np.load(spath, allow_pickle=False)
        if lower.endswith((".png", ".jpg", ".jpeg", ".bmp")):
            from PIL import Image

            src = _io.BytesIO(_open_bytes(spath)) if remote else spath
            with Image.open(src) as im:
                return np.asarray(im)
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(spath, f"corrupt or unreadable image ({type(exc).__name__}: {exc})") from exc
    raise InputFileError(spath, "unknown image type (expected .tif, .tiff, .png, .jpg or .npy)")


def load_site(
    paths: Mapping[str, str],
    channels: Sequence[str],
    site: str = "?",
    dtype: type = np.float32,
) -> np.ndarray:
    """Read the channels of one site into a ``(C, H, W)`` array.

    Parameters
    ----------
    paths : mapping
        Channel name -> file path or URL (e.g. an index row's ``Path_<Channel>`` values keyed by channel).
    channels : sequence of str
        Channels to read, in this order.
    site : str
        Site name for error messages (``plate/well/site``).
    dtype : numpy dtype
        Output dtype; values are not rescaled.

    Raises
    ------
    SiteError
        If a channel is absent or the channel images differ in size.
    InputFileError
        If a file is missing or corrupt.
    """
    planes = []
    for ch in channels:
        p = paths.get(ch)
        if p is None or (isinstance(p, float) and np.isnan(p)) or p == "":
            raise SiteError(site, f"channel '{ch}' is missing (available: {sorted(k for k, v in paths.items() if v)})")
        img = read_image(p)
        if img.ndim == 3 and 1 in img.shape:
            img = img.squeeze()
        if img.ndim != 2:
            raise SiteError(site, f"channel '{ch}' image {p} has shape {img.shape}, expected a 2-D plane")
        planes.append(img)
    shapes = {pl.shape for pl in planes}
    if len(shapes) > 1:
        desc = ", ".join(f"{ch}={pl.shape[0]}x{pl.shape[1]}" for ch, pl in zip(channels, planes))
        raise SiteError(site, f"channel images differ in size ({desc})")
    return np.stack(planes).astype(dtype, copy=False)


def load_index_row(row, channels: Sequence[str], illum: bool = True, dtype: type = np.float32) -> np.ndarray:
    """Read one index row (see :mod:`stratonet.index.schema`) as ``(C, H, W)``.

    If ``illum`` and the row has ``Illum_<Channel>`` paths (.npy illumination functions), each channel is divided
    by its function (CellProfiler's CorrectIlluminationApply, divide mode). Array-stack rows (``Path_Stack``)
    are read whole and their channels picked by name.
    """
    from stratonet.index.schema import ILLUM_PREFIX, STACK_CHANNELS, STACK_PATH, site_name, site_paths

    site = site_name(row)
    if STACK_PATH in row.keys():
        stack = read_image(row[STACK_PATH])
        order = str(row[STACK_CHANNELS]).split("|")
        missing = [c for c in channels if c not in order]
        if missing:
            raise SiteError(site, f"channel(s) {missing} not in stack {row[STACK_PATH]} (has {order})")
        from stratonet.index.arrays import as_chw

        chw = as_chw(stack, len(order))
        if chw is None:
            raise SiteError(site, f"stack {row[STACK_PATH]} has shape {stack.shape}, expected ({len(order)}, H, W) "
                                  f"or (H, W, {len(order)})")
        return chw[[order.index(c) for c in channels]].astype(dtype, copy=False)
    img = load_site(site_paths(row, list(channels)), channels, site=site, dtype=dtype)
    if illum:
        for i, ch in enumerate(channels):
            ip = row.get(f"{ILLUM_PREFIX}{ch}") if hasattr(row, "get") else None
            if isinstance(ip, str) and ip:
                fn = read_image(ip).astype(np.float32)
                if fn.shape != img.shape[1:]:
                    raise SiteError(site, f"illumination function {ip} is {fn.shape}, image is {img.shape[1:]}")
                img[i] = img[i] / np.maximum(fn, 1e-6)
    return img
