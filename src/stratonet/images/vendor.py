"""Vendor image files (OME-TIFF, CZI, ND2, LIF, ...) read through bioio, one plane at a time.

bioio picks the reader plugin installed for a file; the OME-TIFF reader comes with the ``formats`` extra, the
others with their own extras (:data:`READER_EXTRAS`). A file no installed reader can open is a one-line error
naming the file and the extra to install. Files are read from local paths. Opened files are cached per process and scene; reads of one file are
serialised (a bioio image object keeps its current scene).
"""

from __future__ import annotations

import os
import threading

import numpy as np

from stratonet.core.errors import InputFileError, NotAvailableError
from stratonet.images.planeref import PlaneRef
from stratonet.core.remote import is_url

# file suffix -> (stratonet extra, bioio reader package)
READER_EXTRAS = {
    ".ome.tiff": ("formats", "bioio-ome-tiff"), ".ome.tif": ("formats", "bioio-ome-tiff"),
    ".tiff": ("formats", "bioio-tifffile"), ".tif": ("formats", "bioio-tifffile"),
    ".czi": ("czi", "bioio-czi"), ".nd2": ("nd2", "bioio-nd2"), ".lif": ("lif", "bioio-lif"),
}
_CACHE: dict = {"pid": None, "images": {}}
_LOCK = threading.RLock()


def suffix_of(path: str) -> str:
    """The known vendor suffix of a path (``.ome.tiff`` before ``.tiff``), or its last suffix."""
    lower = str(path).lower()
    for suffix in READER_EXTRAS:
        if lower.endswith(suffix):
            return suffix
    return os.path.splitext(lower)[1]


def missing_reader(path: str) -> str:
    """The one-line message for a file no installed bioio reader opens, naming the extra to install."""
    extra, package = READER_EXTRAS.get(suffix_of(path), (None, None))
    if extra is None:
        return "no bioio reader for this file type is known to stratonet; install the bioio reader plugin for it"
    return f"no installed bioio reader opens '{suffix_of(path)}' files; pip install 'stratonet[{extra}]' ({package})"


def open_image(path: str, scene: int = 0):
    """A bioio ``BioImage`` of ``path`` set to ``scene`` (cached per process); one-line errors name the file."""
    try:
        from bioio import BioImage
        from bioio_base.exceptions import UnsupportedFileFormatError
    except ImportError:
        raise NotAvailableError("vendor files need the 'formats' extra: pip install 'stratonet[formats]' "
                                "(bioio, bioio-ome-tiff)") from None
    with _LOCK:
        if _CACHE["pid"] != os.getpid():
            _CACHE.update(pid=os.getpid(), images={})
        hit = _CACHE["images"].get((path, scene))
        if hit is not None:
            return hit
        if is_url(path):
            raise InputFileError(path, "vendor files are read from local paths only (copy the file, or convert the "
                                       "plate to OME-Zarr)")
        if not os.path.isfile(path):
            raise InputFileError(path, "file not found")
        try:
            img = BioImage(path)
        except UnsupportedFileFormatError:
            raise InputFileError(path, missing_reader(path)) from None
        except Exception as exc:
            raise InputFileError(path, f"corrupt or unreadable ({type(exc).__name__}: {exc})".splitlines()[0]) \
                from None
        if not 0 <= scene < len(img.scenes):
            raise InputFileError(path, f"no scene {scene} (the file has {len(img.scenes)})")
        img.set_scene(scene)
        _CACHE["images"][(path, scene)] = img
        return img


def _check(img, ref: PlaneRef) -> None:
    dims = img.dims
    for ax, want in (("C", ref.c), ("T", ref.t), ("Z", ref.z)):
        if want == "max" and ax == "Z":
            continue
        if not 0 <= int(want) < getattr(dims, ax):
            raise InputFileError(str(ref), f"{ax.lower()}={want} is out of range (the file has "
                                           f"{getattr(dims, ax)} along {ax.lower()})")


def read_plane(ref: PlaneRef) -> np.ndarray:
    """The 2-D plane a reference names (``z=max``: maximum over z), in its stored dtype."""
    with _LOCK:
        img = open_image(ref.image, ref.scene or 0)
        _check(img, ref)
        try:
            if ref.z == "max":
                stack = img.get_image_dask_data("ZYX", T=ref.t, C=ref.c).compute()
                return np.asarray(stack).max(axis=0)
            return np.asarray(img.get_image_dask_data("YX", T=ref.t, C=ref.c, Z=int(ref.z)).compute())
        except Exception as exc:
            raise InputFileError(str(ref), f"corrupt or unreadable plane ({type(exc).__name__}: {exc})") from None


def plane_shape(ref: PlaneRef) -> tuple[int, int]:
    """(H, W) of a plane from the file's metadata."""
    with _LOCK:
        img = open_image(ref.image, ref.scene or 0)
        _check(img, ref)
        return int(img.dims.Y), int(img.dims.X)
