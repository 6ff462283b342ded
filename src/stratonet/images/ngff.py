"""OME-Zarr (OME-NGFF) groups and planes, local or remote, read lazily chunk by chunk with zarr-python.

Both NGFF 0.4 (zarr v2, metadata at the top of ``.zattrs``) and 0.5 (zarr v3, metadata under ``"ome"`` in
``zarr.json``) are read. Remote groups (``s3://``, ``https://``) go through fsspec with the storage options, retries
and one-line errors of :mod:`stratonet.core.remote`. Opened images are cached per process, so reading the channels of a
site fetches each image's metadata once; a plane read fetches only the chunks that hold it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stratonet.core.errors import InputFileError, NotAvailableError
from stratonet.images.planeref import PlaneRef
from stratonet.core.remote import is_url, storage_options, with_retries

AXIS_ORDER = "tczyx"
_CACHE: dict = {"pid": None, "images": {}}
_LOCK = threading.Lock()


def require_zarr():
    """The ``zarr`` module, or a one-line error naming the extra that installs it."""
    try:
        import zarr
    except ImportError:
        raise NotAvailableError("OME-Zarr needs the 'formats' extra: pip install 'stratonet[formats]' "
                                "(zarr, ome-zarr)") from None
    return zarr


def join(base: str, *parts: str) -> str:
    """``base/part/...`` for a local path or a URL (no normalisation of the URL)."""
    return "/".join([str(base).rstrip("/")] + [str(p).strip("/") for p in parts])


def open_group(path: str):
    """Open a zarr group read-only; one-line :class:`InputFileError` naming ``path`` when it is not one."""
    zarr = require_zarr()
    remote = is_url(path)
    if not remote and not Path(path).exists():
        raise InputFileError(path, "not found")

    def action():
        if remote:
            return zarr.open_group(store=path, mode="r", storage_options=storage_options(path))
        return zarr.open_group(store=path, mode="r")

    try:
        return with_retries(path, action, "open the zarr group") if remote else action()
    except InputFileError as exc:
        if exc.reason == "file not found":
            raise InputFileError(path, "not found (no zarr group here)") from None
        raise
    except Exception as exc:
        raise InputFileError(path, f"not a zarr group ({type(exc).__name__}: {exc})".splitlines()[0]) from None


def ome_attrs(group) -> dict:
    """A group's OME metadata: the ``"ome"`` attribute (NGFF 0.5) or the attributes themselves (0.4)."""
    attrs = dict(group.attrs)
    return dict(attrs["ome"]) if isinstance(attrs.get("ome"), dict) else attrs


@dataclass(frozen=True)
class ImageInfo:
    """One multiscale OME-Zarr image: axes, resolution-level array paths and channel labels (None: no omero)."""

    path: str
    axes: str
    levels: tuple[str, ...]
    labels: tuple[str, ...] | None
    group: object


def clear_cache() -> None:
    """Forget the opened images (indexing reopens a plate that may have changed since)."""
    with _LOCK:
        _CACHE.update(pid=os.getpid(), images={})


def image_info(path: str) -> ImageInfo:
    """Open an OME-Zarr image (cached per process) and check its axes; one-line errors name ``path``."""
    with _LOCK:
        if _CACHE["pid"] != os.getpid():
            _CACHE.update(pid=os.getpid(), images={})
        hit = _CACHE["images"].get(path)
    if hit is not None:
        return hit
    group = open_group(path)
    meta = ome_attrs(group)
    ms = meta.get("multiscales")
    if not ms or not isinstance(ms, list) or not ms[0].get("datasets"):
        raise InputFileError(path, "not an OME-Zarr image (no 'multiscales' metadata with datasets)")
    axes = "".join(str(a.get("name", a) if isinstance(a, dict) else a).lower() for a in ms[0].get("axes", []))
    check_axes(axes, path)
    labels = None
    omero = meta.get("omero")
    if isinstance(omero, dict) and omero.get("channels"):
        labels = tuple(str(ch.get("label", i)) for i, ch in enumerate(omero["channels"]))
    info = ImageInfo(path, axes, tuple(str(d["path"]) for d in ms[0]["datasets"]), labels, group)
    with _LOCK:
        _CACHE["images"][path] = info
    return info


def check_axes(axes: str, path: str) -> None:
    """Axes must be a subsequence of ``tczyx`` ending in ``yx`` (the NGFF order); one-line error otherwise."""
    it = iter(AXIS_ORDER)
    ordered = all(a in it for a in axes)
    if not axes.endswith("yx") or not ordered or len(set(axes)) != len(axes):
        raise InputFileError(path, f"axes '{axes or 'none'}' are not OME-NGFF image axes (expected a subsequence "
                                   f"of '{AXIS_ORDER}' ending in 'yx', e.g. 'tczyx' or 'cyx')")


def level_array(info: ImageInfo, level: int):
    """The zarr array of one resolution level (0 = full resolution), cached with the image (its metadata is
    fetched once, not once per plane)."""
    with _LOCK:
        hit = _CACHE["images"].get((info.path, level))
    if hit is not None:
        return hit
    if not 0 <= level < len(info.levels):
        raise InputFileError(info.path, f"no resolution level {level} (the image has {len(info.levels)}: "
                                        f"0..{len(info.levels) - 1})")
    key = info.levels[level]
    try:
        arr = info.group[key]
    except Exception as exc:
        raise InputFileError(join(info.path, key), f"resolution level {level} is missing or unreadable "
                                                   f"({type(exc).__name__})") from None
    if arr.ndim != len(info.axes):
        raise InputFileError(join(info.path, key), f"array has {arr.ndim} dimensions but the axes are "
                                                   f"'{info.axes}'")
    with _LOCK:
        _CACHE["images"][(info.path, level)] = arr
    return arr


def _selection(info: ImageInfo, arr, ref: PlaneRef) -> tuple:
    """Index tuple picking (t, c, z) of ``ref`` from ``arr`` (z kept whole for a projection)."""
    sizes = dict(zip(info.axes, arr.shape))
    want = {"t": ref.t, "c": ref.c, "z": ref.z}
    sel = []
    for ax in info.axes:
        if ax in "yx":
            sel.append(slice(None))
        elif ax == "z" and ref.z == "max":
            sel.append(slice(None))
        else:
            i = int(want[ax])
            if not 0 <= i < sizes[ax]:
                raise InputFileError(str(ref), f"{ax}={i} is out of range (the image has {sizes[ax]} along {ax})")
            sel.append(i)
    for ax in "tcz":
        if ax not in info.axes and want[ax] not in (0, "max"):
            raise InputFileError(str(ref), f"{ax}={want[ax]} asked for, but the image has no '{ax}' axis")
    return tuple(sel)


def read_plane(ref: PlaneRef) -> np.ndarray:
    """The 2-D plane a reference names, in its stored dtype (``z=max``: maximum over z)."""
    info = image_info(ref.image)
    arr = level_array(info, ref.level)
    sel = _selection(info, arr, ref)

    def action():
        return np.asarray(arr[sel])

    try:
        plane = with_retries(ref.image, action, "read") if is_url(ref.image) else action()
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(str(ref), f"corrupt or unreadable chunk ({type(exc).__name__}: {exc})") from None
    if plane.ndim == 3:  # the z stack of a projection
        plane = plane.max(axis=0)
    return plane


def plane_shape(ref: PlaneRef) -> tuple[int, int]:
    """(H, W) of a plane from the array metadata; checks the channel, z and t exist."""
    info = image_info(ref.image)
    arr = level_array(info, ref.level)
    _selection(info, arr, ref)
    return tuple(int(s) for s in arr.shape[-2:])  # type: ignore[return-value]
