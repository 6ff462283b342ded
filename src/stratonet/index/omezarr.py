"""The ``ome-zarr`` layout: an OME-NGFF HCS plate (plate -> row -> column -> field -> multiscale image).

One index row per well field. ``Path_<Channel>`` holds a plane reference (:mod:`stratonet.images.planes`) such as
``/data/P1.zarr/B/3/0#c=1&level=0&z=0&t=0``, so every extractor reads the plane through
:func:`stratonet.images.io.read_image` exactly as it reads a TIFF. Channel names come from the ``omero`` channel labels,
renamed with a channel map (``Hoechst=DNA``, or by index ``0=DNA``). Field metadata that ``stratonet export``
wrote (the ``stratonet`` attribute of a field) comes back as ``Metadata_*`` columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stratonet.core.errors import ConfigError, InputFileError
from stratonet.index.layouts import channel_key, parse_channel_map
from stratonet.index.schema import PATH_PREFIX, normalise_well
from stratonet.images.ngff import clear_cache, image_info, join, level_array, ome_attrs, open_group, plane_shape, require_zarr
from stratonet.images.planeref import PlaneRef
from stratonet.core.progress import track
from stratonet.core.remote import is_url

EXPORT_ATTR = "stratonet"  # field attribute holding the Metadata_* values `stratonet export` wrote


@dataclass(frozen=True)
class PlaneChoice:
    """Which plane of every field to index: resolution level, z index or ``"max"`` (projection), time point."""

    level: int = 0
    z: int | str = 0
    t: int = 0


def looks_like_plate(source: str | Path) -> bool:
    """True when ``source`` is a zarr group (a ``.zarr`` name, or a local folder with zarr metadata)."""
    name = str(source).rstrip("/")
    if name.lower().endswith(".zarr"):
        return True
    return not is_url(name) and any((Path(name) / f).exists() for f in ("zarr.json", ".zattrs", ".zgroup"))


def omezarr(source: str | Path, channel_map: str | dict | None = None, plate: str | None = None,
            choice: PlaneChoice = PlaneChoice()) -> pd.DataFrame:
    """Index an OME-Zarr HCS plate.

    Parameters
    ----------
    source : str or Path
        The plate group: a local folder or an fsspec URL (``s3://``, ``https://``).
    channel_map : str or dict, optional
        omero label (or channel index) -> name, e.g. ``"Hoechst=DNA,1=ER"``.
    plate : str, optional
        ``Metadata_Plate`` (default: the plate's ``name``, else the folder name without ``.zarr``).
    choice : PlaneChoice
        Resolution level, z plane (or ``"max"``) and time point.

    Raises
    ------
    InputFileError
        For a group that is not an HCS plate, a listed well or field that is missing, wrong axes, no channel
        labels without a channel map, a level/z/t out of range; the message names the path.
    """
    require_zarr()
    clear_cache()
    base = str(source).rstrip("/") if is_url(source) else str(Path(source).resolve())
    meta = ome_attrs(open_group(base))
    spec = meta.get("plate")
    if not isinstance(spec, dict) or not spec.get("wells"):
        raise InputFileError(base, "not an OME-Zarr HCS plate (no 'plate' metadata listing wells); a single image "
                                   "is not a plate")
    name = plate or spec.get("name") or re.sub(r"\.(ome\.)?zarr$", "", base.rsplit("/", 1)[-1], flags=re.I)
    cmap = parse_channel_map(channel_map)
    rows = []
    for well in track(spec["wells"], "reading the plate's wells", total=len(spec["wells"])):
        rows.extend(_well_rows(base, well, spec, str(name), cmap, choice))
    if not rows:
        raise InputFileError(base, "the plate lists wells but none has a field")
    return pd.DataFrame(rows)


def _well_name(well: dict, spec: dict, base: str) -> str:
    """``A01`` from a well entry (its path ``A/1``, or the row and column indices)."""
    path = str(well.get("path", ""))
    parts = path.split("/")
    if len(parts) == 2:
        return normalise_well(parts[0] + parts[1])
    try:
        return normalise_well(spec["rows"][well["rowIndex"]]["name"] + spec["columns"][well["columnIndex"]]["name"])
    except (KeyError, IndexError, TypeError):
        raise InputFileError(join(base, path), "well entry has neither a ROW/COLUMN path nor valid indices") from None


def _well_rows(base: str, well: dict, spec: dict, plate: str, cmap: dict, choice: PlaneChoice) -> list[dict]:
    """The index rows of one well: one per field listed in the well's metadata."""
    wname = _well_name(well, spec, base)
    wpath = join(base, str(well["path"]))
    images = ome_attrs(open_group(wpath)).get("well", {}).get("images")
    if not images:
        raise InputFileError(wpath, "well has no 'well' metadata listing its fields")
    rows = []
    for pos, img in enumerate(images):
        fpath = join(wpath, str(img["path"]))
        info = image_info(fpath)
        arr = level_array(info, choice.level)
        n_channels = arr.shape[info.axes.index("c")] if "c" in info.axes else 1
        names = channel_names(info.labels, n_channels, info.path, cmap)
        row = {"Metadata_Plate": plate, "Metadata_Well": wname,
               "Metadata_Site": int(img["path"]) + 1 if str(img["path"]).isdigit() else pos + 1}
        extra = dict(info.group.attrs).get(EXPORT_ATTR) or {}
        row.update({k: v for k, v in extra.items() if k.startswith("Metadata_") and k not in row})
        for i, ch in enumerate(names):
            ref = PlaneRef(fpath, c=i, level=choice.level, z=choice.z, t=choice.t)
            plane_shape(ref)  # level, z and t exist (metadata only)
            row[f"{PATH_PREFIX}{ch}"] = str(ref)
        rows.append(row)
    return rows


def channel_names(labels: tuple[str, ...] | None, n: int, where: str, cmap: dict) -> list[str]:
    """Channel names of an image with ``n`` channels: its labels renamed by the map (labels first, then indices);
    without labels, the map must name every index. One-line errors name ``where``."""
    if labels is None:
        if cmap and all(str(i) in cmap for i in range(n)):
            labels = tuple(str(i) for i in range(n))
        else:
            raise InputFileError(where, f"no 'omero' channel labels for its {n} channel(s); add them, or name "
                                            f"the channels by index: --channel-map "
                                            f"{','.join(f'{i}=NAME{i}' for i in range(n))}")
    if len(labels) != n:
        raise InputFileError(where, f"omero lists {len(labels)} channel(s) but the image has {n}")
    names = []
    for i, label in enumerate(labels):
        name = cmap.get(channel_key(label)) or cmap.get(str(i)) or re.sub(r"[^A-Za-z0-9]", "", label)
        if not name or not name[0].isalpha():
            raise ConfigError(f"{where}: channel {i} label '{label}' is not a usable name; map it, e.g. "
                              f"--channel-map '{i}=DNA'")
        names.append(name)
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: channel names repeat ({names}); give distinct names with --channel-map")
    return names
