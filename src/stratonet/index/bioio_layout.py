"""The ``bioio`` layout: vendor files (OME-TIFF, CZI, ND2, LIF, ...) read through bioio.

SOURCE is one file or a folder of them. Every scene of a file is a site; the well (and, for a one-scene file, the
site) comes from the file name, by default a well token such as ``B03`` optionally followed by ``_s2`` / ``_f2``
(``--pattern`` with named groups ``well`` or ``row`` + ``col``, and ``site``, for other names). Channel names come
from the file's metadata, renamed with the channel map. ``Path_<Channel>`` holds a plane reference
``FILE#scene=S&c=C&z=Z&t=T`` (:mod:`stratonet.images.planes`) that :func:`stratonet.images.io.read_image` reads.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from stratonet.core.errors import ConfigError, InputFileError
from stratonet.index.checks import require_folder
from stratonet.index.layouts import parse_channel_map
from stratonet.index.omezarr import PlaneChoice, channel_names
from stratonet.index.schema import PATH_PREFIX, normalise_well, well_from_row_col
from stratonet.images.planeref import PlaneRef
from stratonet.images.vendor import READER_EXTRAS, open_image

WELL_PATTERN = r"(?:^|[_\-. ])(?P<well>[A-Pa-p]\d{1,2})(?:[_\-. ](?:s|f|site|field)(?P<site>\d+))?(?=[_\-. ]|$)"


def bioio_files(source: str | Path, channel_map: str | dict | None = None, plate: str | None = None,
                pattern: str | None = None, choice: PlaneChoice = PlaneChoice()) -> pd.DataFrame:
    """Index vendor files: one row per scene.

    Raises
    ------
    InputFileError
        For a file whose name has no well, a file no installed reader opens (naming the extra), a z or t out of
        range; the message names the file.
    """
    if choice.level != 0:
        raise ConfigError("--level applies to OME-Zarr plates only (vendor files are read at full resolution)")
    source = Path(source)
    files = [source] if source.is_file() else _vendor_files(source)
    regex = re.compile(pattern or WELL_PATTERN)
    cmap = parse_channel_map(channel_map)
    rows = []
    for f in files:
        well, site = _well_site(f, regex)
        img = open_image(str(f), 0)
        n_scenes = len(img.scenes)
        if site is not None and n_scenes > 1:
            raise InputFileError(str(f), f"the name gives site {site} but the file holds {n_scenes} scenes; "
                                         "drop the site from --pattern (each scene is a site)")
        for scene in range(n_scenes):
            img = open_image(str(f), scene)
            labels = tuple(str(c) for c in img.channel_names) if img.channel_names else None
            names = channel_names(labels, int(img.dims.C), str(f), cmap)
            row = {"Metadata_Plate": plate or (source.parent.name if source.is_file() else source.name),
                   "Metadata_Well": well, "Metadata_Site": site if site is not None else scene + 1}
            for c, ch in enumerate(names):
                row[f"{PATH_PREFIX}{ch}"] = str(PlaneRef(str(f.resolve()), c=c, z=choice.z, t=choice.t,
                                                         scene=scene))
            rows.append(row)
    return pd.DataFrame(rows)


def _vendor_files(folder: Path) -> list[Path]:
    require_folder(folder, "vendor image files")
    suffixes = tuple(READER_EXTRAS)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
    if not files:
        raise InputFileError(str(folder), f"no vendor image files ({', '.join(suffixes)}) in this folder")
    return files


def _well_site(path: Path, regex: re.Pattern) -> tuple[str, int | None]:
    """(well, site or None) parsed from a file name."""
    m = regex.search(path.name)
    groups = m.groupdict() if m else {}
    try:
        if groups.get("well"):
            well = normalise_well(groups["well"])
        elif groups.get("row") and groups.get("col"):
            row = groups["row"]
            well = well_from_row_col(int(row) if row.isdigit() else ord(row.upper()) - 64, int(groups["col"]))
        else:
            raise ValueError
    except Exception:
        raise InputFileError(str(path), "no well in the file name (expected e.g. B03 or B03_s2); give --pattern "
                                        "with named groups well (or row and col) and site") from None
    site = groups.get("site")
    return well, int(site) if site else None
