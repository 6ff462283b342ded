"""What an index is built with, besides its source and layout: one frozen object, built once by ``stratonet index``
(or by a Python caller) and passed whole to :func:`stratonet.index.build_index`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stratonet.index.omezarr import PlaneChoice


@dataclass(frozen=True)
class IndexOptions:
    """Options of :func:`~stratonet.index.build_index` (each as the ``stratonet index`` option of the same name).

    Parameters
    ----------
    channel_map : str or dict, optional
        File-name channel token -> name (``"1=Mito,2=AGP"``); phenix defaults to JUMP's order.
    plate : str, optional
        Plate name (phenix / imagexpress / regex without a plate group); a filter for bbbc021.
    plane : int, optional
        Phenix plane to keep (default 1).
    pattern : str, optional
        Regular expression for ``regex`` (named groups plate, well or row+col, site, channel).
    channels : str or list, optional
        Channel order of ``arrays`` stacks.
    file_column : str, optional
        File column of an ``arrays`` index.csv.
    columns : str or dict, optional
        ``arrays``: which index.csv column holds what (see :func:`stratonet.index.arrays.arrays`).
    image_root : path, optional
        Folder holding BBBC021's plate folders (default: the image table's folder).
    source_name, batch : str, optional
        Written as ``Metadata_Source`` / ``Metadata_Batch``.
    platemap, barcode_platemap, compound_metadata : path, optional
        JUMP metadata to join (see :mod:`stratonet.index.metadata`).
    check : bool
        Read file headers (``False`` checks only that every site has every channel).
    on_error : {"fail", "skip"}
        ``skip`` drops bad sites, calling ``record(site, message)`` (an argument of ``build_index``) for each.
    plate_format : {"auto", 96, 384, 1536}
        Wells must exist on this plate format (``auto``: the smallest format holding each plate's wells); a well
        such as ``Z99`` or, on a 96-well plate, ``A13`` is an error.
    planes : PlaneChoice, optional
        ``ome-zarr`` / ``bioio``: resolution level, z plane or ``"max"`` projection, and time point to index.
    """

    channel_map: str | dict | None = None
    plate: str | None = None
    plane: int | None = None
    pattern: str | None = None
    channels: str | list[str] | None = None
    file_column: str | None = None
    columns: str | dict | None = None
    image_root: str | Path | None = None
    source_name: str | None = None
    batch: str | None = None
    platemap: str | Path | None = None
    barcode_platemap: str | Path | None = None
    compound_metadata: str | Path | None = None
    check: bool = True
    on_error: str = "fail"
    plate_format: str | int | None = "auto"
    planes: PlaneChoice | None = None
