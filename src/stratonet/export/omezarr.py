"""An index's images as an OME-Zarr HCS plate (NGFF 0.5), written with ome-zarr-py.

Each field becomes one ``tczyx`` image (t = z = 1) with the index's channels in order, stored in the images' own
dtype (no rescaling), one chunk per channel plane so a reader fetches only the channel it needs. The channel names
go into the ``omero`` labels; a site's other ``Metadata_*`` values go into the field's ``stratonet`` attribute, so
``stratonet index`` gives back the same rows. Field ``k`` of a well holds site ``k + 1``.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.errors import ConfigError, InputFileError, SiteError
from stratonet.index.omezarr import EXPORT_ATTR
from stratonet.index.schema import ILLUM_PREFIX, STACK_PATH, channels_of, site_name, site_paths
from stratonet.images.io import read_site_plane
from stratonet.images.ngff import require_zarr
from stratonet.core.progress import track

KEYS = ("Metadata_Plate", "Metadata_Well", "Metadata_Site")


@dataclass(frozen=True)
class ZarrExport:
    """Options of an OME-Zarr export: resolution levels (1 = full resolution only, each next level halves the
    size), the plate to write when the index has several, whether to replace an existing ``out``, and the chunk
    compression (see :func:`compressor`)."""

    levels: int = 1
    plate: str | None = None
    overwrite: bool = False
    compression: str = "blosc-zstd"


COMPRESSIONS = ("blosc-zstd", "blosc-lz4", "zstd", "none")


def compressor(name: str):
    """The zarr codec of a compression name: Blosc (byte shuffle, multithreaded; zstd level 1 or lz4 level 5),
    plain zstd (ome-zarr's default), or none. Blosc decodes a 1080x1080 uint16 plane faster than an uncompressed
    plane is read (benchmarks/speed/omezarr_read.md)."""
    from zarr.codecs import BloscCodec, ZstdCodec

    codecs = {"blosc-zstd": lambda: BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),
              "blosc-lz4": lambda: BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
              "zstd": lambda: ZstdCodec(level=0), "none": lambda: None}
    if name not in codecs:
        raise ConfigError(f"unknown compression '{name}' (choose from {', '.join(COMPRESSIONS)})")
    return codecs[name]()


def export_plate(index: pd.DataFrame, out: Path, cfg: ZarrExport = ZarrExport()) -> dict:
    """Write the sites of one plate of ``index`` to ``out`` (a ``.zarr`` folder); returns a summary dict.

    Raises
    ------
    ConfigError
        For an index of array stacks, several plates without ``cfg.plate``, or an ``out`` that exists.
    SiteError
        For a site whose channels differ in size or dtype, or whose site number is not a positive integer.
    """
    require_zarr()
    compressor(cfg.compression)  # a bad name fails before anything is written
    write_plate_metadata, write_well_metadata = _writer("write_plate_metadata", "write_well_metadata")
    if STACK_PATH in index.columns:
        raise ConfigError("an index of array stacks (--layout arrays) cannot be exported as an HCS plate")
    rows = _one_plate(index, cfg.plate)
    out = Path(out)
    if out.exists():
        if not cfg.overwrite:
            raise ConfigError(f"{out} exists; pass --overwrite to replace it")
        shutil.rmtree(out)
    import zarr

    channels = channels_of(rows)
    root = zarr.open_group(str(out), mode="w")
    wells = sorted(rows["Metadata_Well"].unique(), key=_row_col)
    row_names = sorted({_row_col(w)[0] for w in wells}, key=lambda r: (len(r), r))
    col_names = sorted({_row_col(w)[1] for w in wells})
    plate = str(rows["Metadata_Plate"].iloc[0])
    write_plate_metadata(root, row_names, [str(c) for c in col_names],
                         [f"{_row_col(w)[0]}/{_row_col(w)[1]}" for w in wells], name=plate,
                         field_count=int(rows.groupby("Metadata_Well").size().max()))
    n_sites = 0
    for well in track(wells, "writing wells", total=len(wells)):
        sites = rows[rows["Metadata_Well"] == well].sort_values("Metadata_Site")
        r, c = _row_col(well)
        wgroup = root.require_group(r).require_group(str(c))
        write_well_metadata(wgroup, [{"path": str(_site_number(s) - 1)} for _, s in sites.iterrows()])
        for _, site in sites.iterrows():
            _write_field(wgroup.require_group(str(_site_number(site) - 1)), site, channels, cfg)
            n_sites += 1
    return {"plate": plate, "wells": len(wells), "sites": n_sites, "channels": channels,
            "illum_dropped": any(col.startswith(ILLUM_PREFIX) for col in rows.columns)}


def _writer(*names: str) -> tuple:
    """Functions of ``ome_zarr.writer``; its import-time deprecation notice (a default ``Scaler`` argument inside
    ome-zarr itself, not our use) is kept off the terminal."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="ome_zarr")
        warnings.filterwarnings("ignore", message=".*Scaler.*", category=DeprecationWarning)
        import ome_zarr.writer as writer
    return tuple(getattr(writer, n) for n in names)


def _one_plate(index: pd.DataFrame, plate: str | None) -> pd.DataFrame:
    plates = sorted(index["Metadata_Plate"].astype(str).unique())
    if plate is not None:
        if plate not in plates:
            raise ConfigError(f"--plate {plate}: not in the index (plates: {', '.join(plates)})")
        return index[index["Metadata_Plate"].astype(str) == plate]
    if len(plates) > 1:
        raise ConfigError(f"the index holds {len(plates)} plates ({', '.join(plates[:5])}); an HCS plate holds one: "
                          "choose it with --plate")
    return index


def _row_col(well: str) -> tuple[str, int]:
    letters = "".join(ch for ch in well if ch.isalpha())
    return letters, int(well[len(letters):])


def _site_number(site: pd.Series) -> int:
    value = site["Metadata_Site"]
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or number != value:
        raise SiteError(site_name(site), f"Metadata_Site '{value}' is not a positive integer (field paths are "
                                         "site - 1)")
    return number


def _write_field(group, site: pd.Series, channels: list[str], cfg: ZarrExport) -> None:
    """One site as a (1, C, 1, H, W) image with omero labels and its metadata."""
    (write_image,) = _writer("write_image")
    name = site_name(site)
    paths = site_paths(site, channels)
    planes = [read_site_plane(paths, ch, name) for ch in channels]
    if len({(p.shape, p.dtype.str) for p in planes}) > 1:
        desc = ", ".join(f"{ch}={p.shape[0]}x{p.shape[1]} {p.dtype}" for ch, p in zip(channels, planes))
        raise SiteError(name, f"channels differ in size or dtype ({desc}); an OME-Zarr image needs one of each")
    stack = np.stack(planes)[None, :, None]
    h, w = stack.shape[-2:]
    peak = float(np.iinfo(stack.dtype).max) if stack.dtype.kind in "ui" else 1.0
    omero = {"channels": [{"label": ch, "color": "FFFFFF", "active": True,
                           "window": {"start": 0, "end": peak, "min": 0, "max": peak}} for ch in channels]}
    write_image(stack, group, axes="tczyx", scale_factors=[2 ** i for i in range(1, cfg.levels)],
                storage_options={"chunks": (1, 1, 1, h, w), "compressors": compressor(cfg.compression)},
                metadata={"omero": omero})
    group.attrs[EXPORT_ATTR] = {k: _json_value(v) for k, v in site.items()
                                if str(k).startswith("Metadata_") and k not in KEYS}


def _json_value(value):
    """A table cell as JSON (numpy scalars unwrapped, NaN as null)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if pd.isna(value):
        return None
    return str(value)


def index_of(source: Path) -> pd.DataFrame:
    """The index to export: an index table, or a plate folder with a ``load_data.csv`` (``stratonet synth``)."""
    from stratonet.index import build_index
    from stratonet.core.tables import read_table

    source = Path(source)
    if source.is_dir():
        found = sorted(source.rglob("load_data.csv"))
        if not found:
            raise InputFileError(str(source), "no load_data.csv in this folder; give an index table "
                                              "(stratonet index) or a synthetic plate folder")
        return build_index(found[0], "loaddata")
    return read_table(source)
