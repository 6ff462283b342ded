"""Image I/O: TIFF (tifffile + imagecodecs: LZW, zstd, ...), PNG/JPEG and .npy, from local paths or fsspec URLs.

Reads are per file and lazy: nothing is read until a site is asked for.
"""

from __future__ import annotations

import io as _io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from stratonet.core.errors import InputFileError, SiteError

from stratonet.images.planes import parse_ref, read_plane
from stratonet.core.remote import is_url, read_bytes


def _open_bytes(path: str) -> bytes:
    """A remote file's bytes; network errors are retried and reported as "cannot reach HOST", 404 as "not found"."""
    return read_bytes(path)


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file as a numpy array in its stored dtype.

    Parameters
    ----------
    path : str or Path
        Local path or fsspec URL (``s3://`` is read anonymously). Suffixes: .tif/.tiff, .png, .jpg/.jpeg, .npy;
        or a plane reference ``IMAGE#c=..&z=..`` into an OME-Zarr image or a vendor file (see
        :mod:`stratonet.images.planes`), read chunk by chunk.

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
    ref = parse_ref(spath)
    if ref is not None:
        return read_plane(ref)
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


def full_scale(image: np.ndarray, bit_depth: int | str = "auto", where: str = "image") -> float:
    """The raw value that maps to 1.0 when an image is scaled to [0, 1], as CellProfiler's NamesAndTypes does.

    Parameters
    ----------
    image : ndarray
        The image as stored in its file (its dtype matters, not its content).
    bit_depth : "auto" or int
        ``"auto"``: the dtype's maximum (255 for uint8, 65535 for uint16); float images are taken to be in [0, 1]
        already. An int ``b`` uses ``2**b - 1`` for every image (e.g. 12 for 12-bit data stored as uint16).
    where : str
        The file, named in errors.

    Raises
    ------
    InputFileError
        For a float image with values above 1 under ``"auto"`` (its scale cannot be known; give a bit depth).
    """
    if bit_depth != "auto":
        return float(2 ** int(bit_depth) - 1)
    if image.dtype == bool:
        return 1.0
    if np.issubdtype(image.dtype, np.integer):
        return float(np.iinfo(image.dtype).max)
    peak = float(np.nanmax(image)) if image.size else 0.0
    if peak > 1.0:
        raise InputFileError(where, f"float image with values up to {peak:g}: its intensity scale is unknown; "
                                    "give the bit depth (e.g. --bit-depth 16)")
    return 1.0


def read_site_plane(paths: Mapping[str, str], ch: str, site: str = "?") -> np.ndarray:
    """One channel of a site as a 2-D plane in its stored dtype (the checks of :func:`load_site`, one channel)."""
    p = paths.get(ch)
    if p is None or (isinstance(p, float) and np.isnan(p)) or p == "":
        raise SiteError(site, f"channel '{ch}' is missing (available: {sorted(k for k, v in paths.items() if v)})")
    img = read_image(p)
    if img.ndim == 3 and 1 in img.shape:
        img = img.squeeze()
    if img.ndim != 2:
        raise SiteError(site, f"channel '{ch}' image {p} has shape {img.shape}, expected a 2-D plane")
    check_plane(img, site, ch, str(p))
    return img


def check_plane(img: np.ndarray, site: str, ch: str, where: str) -> None:
    """A plane with non-finite values or one value everywhere is a bad site (``--on-error`` decides), never input
    that poisons a plate's percentiles or gives a row of meaningless features (issue 27, D2)."""
    if img.size == 0:
        raise SiteError(site, f"channel '{ch}' image {where} is empty (0 pixels)")
    if img.dtype.kind in "fc":
        bad = int(np.count_nonzero(~np.isfinite(img)))
        if bad:
            raise SiteError(site, f"channel '{ch}' image {where} has {bad} non-finite (NaN or inf) pixel(s) of "
                                  f"{img.size}; a failed acquisition or conversion")
    lo, hi = img.min(), img.max()
    if lo == hi:
        raise SiteError(site, f"channel '{ch}' image {where} is constant (every pixel {lo.item()!r}); an empty or "
                              "failed acquisition")


def load_site(
    paths: Mapping[str, str],
    channels: Sequence[str],
    site: str = "?",
    dtype: type = np.float32,
    bit_depth: int | str | None = None,
    dtypes: set | None = None,
    dtype_of: list | None = None,
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
        Output dtype.
    bit_depth : "auto", int or None
        None: values are not rescaled. Otherwise each plane is divided by :func:`full_scale` of its stored dtype
        (``"auto"``) or by ``2**bit_depth - 1``: the same rule for every site, never the site's own brightest pixel.
    dtypes : set, optional
        Receives the stored dtype name of every plane read (for provenance).
    dtype_of : list, optional
        Receives the stored dtype of each channel, in the order of ``channels``.

    Raises
    ------
    SiteError
        If a channel is absent or the channel images differ in size.
    InputFileError
        If a file is missing or corrupt.
    """
    planes = []
    for ch in channels:
        img = read_site_plane(paths, ch, site)
        p = paths.get(ch)
        if dtypes is not None:
            dtypes.add(str(img.dtype))
        if dtype_of is not None:
            dtype_of.append(img.dtype)
        if bit_depth is not None:
            img = img.astype(np.float32) / np.float32(full_scale(img, bit_depth, where=str(p)))
        planes.append(img)
    shapes = {pl.shape for pl in planes}
    if len(shapes) > 1:
        desc = ", ".join(f"{ch}={pl.shape[0]}x{pl.shape[1]}" for ch, pl in zip(channels, planes))
        raise SiteError(site, f"channel images differ in size ({desc})")
    return np.stack(planes).astype(dtype, copy=False)


def load_index_row(row, channels: Sequence[str], illum: bool = True, dtype: type = np.float32,
                   bit_depth: int | str | None = None, dtypes: set | None = None,
                   dtype_of: list | None = None) -> np.ndarray:
    """Read one index row (see :mod:`stratonet.index.schema`) as ``(C, H, W)``.

    If ``illum`` and the row has ``Illum_<Channel>`` paths (.npy illumination functions), each channel is divided
    by its function (CellProfiler's CorrectIlluminationApply, divide mode). Array-stack rows (``Path_Stack``)
    are read whole and their channels picked by name. ``bit_depth`` and ``dtypes``: see :func:`load_site`.
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
        picked = chw[[order.index(c) for c in channels]]
        for c, plane in zip(channels, picked):
            check_plane(plane, site, c, str(row[STACK_PATH]))
        if dtypes is not None:
            dtypes.add(str(stack.dtype))
        if dtype_of is not None:
            dtype_of.extend([stack.dtype] * len(channels))
        if bit_depth is not None:
            scale = full_scale(stack, bit_depth, where=str(row[STACK_PATH]))
            return (picked.astype(np.float32) / np.float32(scale)).astype(dtype, copy=False)
        return picked.astype(dtype, copy=False)
    img = load_site(site_paths(row, list(channels)), channels, site=site, dtype=dtype, bit_depth=bit_depth,
                    dtypes=dtypes, dtype_of=dtype_of)
    if illum:
        for i, ch in enumerate(channels):
            ip = row.get(f"{ILLUM_PREFIX}{ch}") if hasattr(row, "get") else None
            if isinstance(ip, str) and ip:
                fn = read_image(ip).astype(np.float32)
                if fn.shape != img.shape[1:]:
                    raise SiteError(site, f"illumination function {ip} is {fn.shape}, image is {img.shape[1:]}")
                img[i] = img[i] / np.maximum(fn, 1e-6)
    return img
