"""Plane references: one 2-D plane inside a multi-dimensional image, written as ``IMAGE#key=value&...``.

An index row's ``Path_<Channel>`` is usually a file holding one plane. For images that hold many planes it is a
reference with a URL-style fragment, so that every reader of index rows (:func:`stratonet.images.io.read_image`) finds
the plane the same way:

- an OME-Zarr image (one field of an HCS plate): ``PLATE.zarr/B/3/0#c=1&level=0&z=0&t=0`` reads channel 1 of
  resolution level 0 at plane z=0, time point 0; ``z=max`` is the maximum projection over z
  (see :mod:`stratonet.images.ngff`);
- a vendor file read through bioio: ``plate.ome.tiff#scene=2&c=1&z=0&t=0`` (see :mod:`stratonet.images.vendor`).

The image part is a local path or an fsspec URL (``s3://``, ``https://``). The reference lives in
:mod:`stratonet.images.planeref` (re-exported here), below the readers, so that no reader imports this dispatcher.
"""

from __future__ import annotations

from stratonet.images.planeref import PlaneRef, parse_ref

__all__ = ["PlaneRef", "parse_ref", "plane_shape", "read_plane"]


def read_plane(ref: PlaneRef):
    """The plane a reference names, as a 2-D array in its stored dtype."""
    if ref.reader == "zarr":
        from stratonet.images.ngff import read_plane as read_zarr

        return read_zarr(ref)
    from stratonet.images.vendor import read_plane as read_vendor

    return read_vendor(ref)


def plane_shape(ref: PlaneRef) -> tuple[int, int]:
    """(H, W) of the plane a reference names, from metadata only (no pixels are read)."""
    if ref.reader == "zarr":
        from stratonet.images.ngff import plane_shape as zarr_shape

        return zarr_shape(ref)
    from stratonet.images.vendor import plane_shape as vendor_shape

    return vendor_shape(ref)
