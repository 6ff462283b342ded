"""``build_index``: one entry point for every layout, the metadata join and the checks."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from stratonet.core.errors import ConfigError, InputFileError
from stratonet.index import arrays as _arrays
from stratonet.index import bbbc021 as _bbbc021
from stratonet.index import layouts as _layouts
from stratonet.index import loaddata as _loaddata
from stratonet.index import omezarr as _omezarr
from stratonet.index.checks import check_index
from stratonet.index.metadata import join_compounds, join_platemaps
from stratonet.index.plate_format import check_wells
from stratonet.index.schema import PATH_PREFIX, STACK_PATH, validate_index
from stratonet.core.remote import is_url

LAYOUTS = ("loaddata", "phenix", "imagexpress", "bbbc021", "regex", "arrays", "ome-zarr", "bioio")
REMOTE_LAYOUTS = ("loaddata", "ome-zarr")


def default_layout(source: str | Path) -> str:
    """``loaddata`` for a .csv(.gz) file, ``ome-zarr`` for a zarr group (a .zarr name or zarr metadata), else
    ``phenix``."""
    name = str(source).rstrip("/").rsplit("/", 1)[-1].lower() if is_url(source) else Path(source).name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "loaddata"
    return "ome-zarr" if _omezarr.looks_like_plate(source) else "phenix"


def build_index(
    source: str | Path,
    layout: str | None = None,
    *,
    channel_map: str | dict | None = None,
    plate: str | None = None,
    plane: int | None = None,
    pattern: str | None = None,
    channels: str | list[str] | None = None,
    file_column: str | None = None,
    image_root: str | Path | None = None,
    source_name: str | None = None,
    batch: str | None = None,
    platemap: str | Path | None = None,
    barcode_platemap: str | Path | None = None,
    compound_metadata: str | Path | None = None,
    check: bool = True,
    on_error: str = "fail",
    record: Callable[[str, str], None] | None = None,
    plate_format: str | int | None = "auto",
    columns: str | dict | None = None,
    planes: _omezarr.PlaneChoice | None = None,
) -> pd.DataFrame:
    """Build an image index (see :mod:`stratonet.index.schema`): one row per site, or per crop for ``arrays``.

    Parameters
    ----------
    source : path
        Folder of images, a LoadData CSV, a BBBC021 image table, or an array-stack folder.
    layout : {"loaddata", "phenix", "imagexpress", "bbbc021", "regex", "arrays", "ome-zarr", "bioio"}, optional
        Default: ``loaddata`` for a .csv file, ``ome-zarr`` for a zarr group, else ``phenix``.
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
        ``skip`` drops bad sites, calling ``record(site, message)`` for each.
    plate_format : {"auto", 96, 384, 1536}
        Wells must exist on this plate format (``auto``: the smallest format holding each plate's wells); a well
        such as ``Z99`` or, on a 96-well plate, ``A13`` is an error.
    planes : PlaneChoice, optional
        ``ome-zarr`` / ``bioio``: resolution level, z plane or ``"max"`` projection, and time point to index.

    Returns
    -------
    DataFrame
    """
    remote = is_url(source)
    source = str(source) if remote else Path(source)  # Path() would turn s3://b/k into s3:/b/k
    layout = layout or default_layout(source)
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout '{layout}' (choose from {', '.join(LAYOUTS)})")
    if planes is not None and planes != _omezarr.PlaneChoice() and layout not in ("ome-zarr", "bioio"):
        raise ConfigError(f"--level, --z, --z-project and --timepoint apply to the ome-zarr and bioio layouts, not "
                          f"'{layout}'")
    if remote and layout not in REMOTE_LAYOUTS:
        raise ConfigError(f"{source}: only a LoadData table or an OME-Zarr plate can be indexed from a URL "
                          f"('{layout}' needs a local folder)")
    if not remote and not Path(source).exists():
        raise InputFileError(str(source), "not found")
    if layout == "loaddata":
        df = _loaddata.loaddata(source)
    elif layout == "phenix":
        df = _layouts.phenix(source, channel_map=channel_map, plate=plate, plane=plane)
    elif layout == "imagexpress":
        df = _layouts.imagexpress(source, channel_map=channel_map, plate=plate)
    elif layout == "regex":
        df = _layouts.regex(source, pattern=pattern or "", channel_map=channel_map, plate=plate)
    elif layout == "bbbc021":
        df = _bbbc021.bbbc021(source, image_root=image_root, plate=plate)
    elif layout == "ome-zarr":
        df = _omezarr.omezarr(source, channel_map=channel_map, plate=plate, choice=planes or _omezarr.PlaneChoice())
    elif layout == "bioio":
        from stratonet.index.bioio_layout import bioio_files

        df = bioio_files(source, channel_map=channel_map, plate=plate, pattern=pattern,
                         choice=planes or _omezarr.PlaneChoice())
    else:
        df = _arrays.arrays(source, channels=channels, file_column=file_column, columns=columns)
    if source_name:
        df.insert(0, "Metadata_Source", source_name)
    if batch:
        df.insert(1 if source_name else 0, "Metadata_Batch", batch)
    validate_index(df, name=str(source))
    check_wells(df, plate_format, source=str(source))
    df = join_platemaps(df, platemap=platemap, barcode_platemap=barcode_platemap)
    df = join_compounds(df, compound_metadata=compound_metadata)
    df = check_index(df, check_files=check, on_error=on_error, record=record)
    if df.empty:
        raise InputFileError(str(source), "no usable site left after the checks")
    return _column_order(df)


def _column_order(df: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in ("Metadata_Source", "Metadata_Batch", "Metadata_Plate", "Metadata_Well", "Metadata_Site") if c in df]
    meta = [c for c in df.columns if c.startswith("Metadata_") and c not in first]
    rest = [c for c in df.columns if c not in first and c not in meta]
    paths = [c for c in rest if c.startswith(PATH_PREFIX) or c == STACK_PATH]
    others = [c for c in rest if c not in paths]
    return df[first + meta + paths + others].reset_index(drop=True)
