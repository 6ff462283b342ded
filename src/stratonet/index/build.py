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
from stratonet.index.options import IndexOptions
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
    options: IndexOptions | None = None,
    *,
    record: Callable[[str, str], None] | None = None,
    **keywords,
) -> pd.DataFrame:
    """Build an image index (see :mod:`stratonet.index.schema`): one row per site, or per crop for ``arrays``.

    Parameters
    ----------
    source : path
        Folder of images, a LoadData CSV, a BBBC021 image table, or an array-stack folder.
    layout : {"loaddata", "phenix", "imagexpress", "bbbc021", "regex", "arrays", "ome-zarr", "bioio"}, optional
        Default: ``loaddata`` for a .csv file, ``ome-zarr`` for a zarr group, else ``phenix``.
    options : IndexOptions, optional
        Everything else (see :class:`~stratonet.index.options.IndexOptions`); or give its fields as keywords
        (``build_index(folder, "phenix", plate="P", channel_map="1=DNA")``), not both.
    record : callable, optional
        With ``on_error="skip"``: called as ``record(site, message)`` for each site dropped.

    Returns
    -------
    DataFrame
    """
    if options is not None and keywords:
        raise ConfigError("build_index: give options as an IndexOptions or as keywords, not both")
    opts = options if options is not None else IndexOptions(**keywords)
    remote = is_url(source)
    source = str(source) if remote else Path(source)  # Path() would turn s3://b/k into s3:/b/k
    layout = layout or default_layout(source)
    _check_layout(source, layout, opts, remote)
    df = _read_layout(source, layout, opts)
    if opts.source_name:
        df.insert(0, "Metadata_Source", opts.source_name)
    if opts.batch:
        df.insert(1 if opts.source_name else 0, "Metadata_Batch", opts.batch)
    validate_index(df, name=str(source))
    check_wells(df, opts.plate_format, source=str(source))
    df = join_platemaps(df, platemap=opts.platemap, barcode_platemap=opts.barcode_platemap)
    df = join_compounds(df, compound_metadata=opts.compound_metadata)
    df = check_index(df, check_files=opts.check, on_error=opts.on_error, record=record)
    if df.empty:
        raise InputFileError(str(source), "no usable site left after the checks")
    return _column_order(df)


def _check_layout(source: str | Path, layout: str, opts: IndexOptions, remote: bool) -> None:
    """Refuse an unknown layout, plane options of another layout, a remote source a layout cannot read, a missing
    local source."""
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout '{layout}' (choose from {', '.join(LAYOUTS)})")
    planes = opts.planes
    if planes is not None and planes != _omezarr.PlaneChoice() and layout not in ("ome-zarr", "bioio"):
        raise ConfigError(f"--level, --z, --z-project and --timepoint apply to the ome-zarr and bioio layouts, not "
                          f"'{layout}'")
    if remote and layout not in REMOTE_LAYOUTS:
        raise ConfigError(f"{source}: only a LoadData table or an OME-Zarr plate can be indexed from a URL "
                          f"('{layout}' needs a local folder)")
    if not remote and not Path(source).exists():
        raise InputFileError(str(source), "not found")


def _read_layout(source: str | Path, layout: str, o: IndexOptions) -> pd.DataFrame:
    """The index rows a layout reader finds in ``source`` (before metadata joins and checks)."""
    if layout == "loaddata":
        return _loaddata.loaddata(source)
    if layout == "phenix":
        return _layouts.phenix(source, channel_map=o.channel_map, plate=o.plate, plane=o.plane)
    if layout == "imagexpress":
        return _layouts.imagexpress(source, channel_map=o.channel_map, plate=o.plate)
    if layout == "regex":
        return _layouts.regex(source, pattern=o.pattern or "", channel_map=o.channel_map, plate=o.plate)
    if layout == "bbbc021":
        return _bbbc021.bbbc021(source, image_root=o.image_root, plate=o.plate)
    if layout == "ome-zarr":
        return _omezarr.omezarr(source, channel_map=o.channel_map, plate=o.plate,
                                choice=o.planes or _omezarr.PlaneChoice())
    if layout == "bioio":
        from stratonet.index.bioio_layout import bioio_files

        return bioio_files(source, channel_map=o.channel_map, plate=o.plate, pattern=o.pattern,
                           choice=o.planes or _omezarr.PlaneChoice())
    return _arrays.arrays(source, channels=o.channels, file_column=o.file_column, columns=o.columns)


def _column_order(df: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in ("Metadata_Source", "Metadata_Batch", "Metadata_Plate", "Metadata_Well", "Metadata_Site") if c in df]
    meta = [c for c in df.columns if c.startswith("Metadata_") and c not in first]
    rest = [c for c in df.columns if c not in first and c not in meta]
    paths = [c for c in rest if c.startswith(PATH_PREFIX) or c == STACK_PATH]
    others = [c for c in rest if c not in paths]
    return df[first + meta + paths + others].reset_index(drop=True)
