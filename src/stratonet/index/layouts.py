"""File-name layouts: Phenix/Opera, ImageXpress and user regular expressions.

Each builder lists the image files under a folder, parses plate, well, site and channel from each path and pivots
the result to one row per site with one ``Path_<Channel>`` column per channel. A channel absent at some sites
leaves an empty cell there; :func:`stratonet.index.checks.check_index` reports it as a site lacking a channel.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from stratonet.core.errors import ConfigError, InputFileError, StratoNetError
from stratonet.index.checks import require_folder
from stratonet.index.schema import PATH_PREFIX, normalise_well, well_from_row_col

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".npy", ".jpg", ".jpeg")
PHENIX_RE = re.compile(
    r"^r(?P<row>\d{2})c(?P<col>\d{2})f(?P<site>\d{2,3})p(?P<plane>\d{2,3})-ch(?P<channel>\d+)sk\d+fk\d+fl\d+\.tiff?$",
    re.IGNORECASE,
)
IMAGEXPRESS_RE = re.compile(
    r"^(?:(?P<plate>.+?)_)?(?P<well>[A-Za-z]{1,2}\d{1,2})_s(?P<site>\d+)_w(?P<channel>\d+)"
    r"(?P<uuid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})?\.tiff?$",
    re.IGNORECASE,
)
BARCODE_RE = re.compile(r"BR\d{5,}")
JUMP_PHENIX_CHANNELS = "1=Mito,2=AGP,3=RNA,4=ER,5=DNA"
IMAGEXPRESS_CHANNELS = "w1=DNA,w2=ER,w3=RNA,w4=AGP,w5=Mito"
_GENERIC_DIRS = {"images", "image", "orig", "raw", "tiffs", "tif", "data"}


def parse_channel_map(spec: str | dict | None) -> dict[str, str]:
    """``"1=Mito,2=AGP"`` (or ``ch1=``/``w1=`` keys) -> ``{"1": "Mito", "2": "AGP"}``.

    Keys are normalised by dropping a leading ``ch``/``w`` and leading zeros, so ``ch01``, ``w1`` and ``1`` agree.
    """
    if spec is None or spec == "":
        return {}
    items = spec.items() if isinstance(spec, dict) else (
        tuple(part.split("=", 1)) if "=" in part else (part, None) for part in str(spec).split(",") if part.strip()
    )
    out: dict[str, str] = {}
    for key, name in items:
        if name is None or not str(name).strip() or not re.match(r"^[A-Za-z][A-Za-z0-9]*$", str(name).strip()):
            raise ConfigError(f"bad channel map entry '{key}={name}' (expected e.g. 1=Mito,2=AGP; names alphanumeric)")
        out[channel_key(key)] = str(name).strip()
    return out


def channel_key(raw: object) -> str:
    """Normalise a channel token from a file name: ``ch05`` / ``w5`` / ``5`` -> ``5``; other tokens kept."""
    s = str(raw).strip()
    m = re.match(r"^(?:ch|w)?0*(\d+)$", s, re.IGNORECASE)
    return m.group(1) if m else s


def channel_name(raw: object, channel_map: dict[str, str], prefix: str = "ch") -> str:
    """Channel name for a file-name token; unmapped numeric tokens become ``ch<N>`` (or ``w<N>``)."""
    key = channel_key(raw)
    if key in channel_map:
        return channel_map[key]
    return f"{prefix}{key}" if key.isdigit() else key


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted); one-line errors for a missing or empty folder."""
    folder = require_folder(Path(folder)).resolve()
    files: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        files.extend(Path(root) / n for n in sorted(names) if n.lower().endswith(IMAGE_SUFFIXES))
    return files


def plate_from_path(path: Path, source: Path) -> str:
    """A ``BR\\d+`` barcode found in the path (rightmost), else the first non-generic folder name from the file up."""
    found = BARCODE_RE.findall(str(path.parent))
    if found:
        return found[-1]
    for parent in [path.parent, *path.parent.parents]:
        if parent.name and parent.name.lower() not in _GENERIC_DIRS:
            return parent.name
        if parent == source:
            break
    return source.resolve().name


def to_wide(records: list[dict], source: Path) -> pd.DataFrame:
    """Pivot per-file records (plate, well, site, channel, path, extra Metadata_*) to one row per site.

    Raises
    ------
    StratoNetError
        If two files claim the same site and channel.
    """
    if not records:
        raise InputFileError(str(source), "no matching image files")
    long = pd.DataFrame.from_records(records)
    keys = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
    dup = long.duplicated(keys + ["channel"], keep=False)
    if dup.any():
        d = long[dup].sort_values(keys + ["channel"]).head(2)
        site = "/".join(str(v) for v in d.iloc[0][keys])
        raise StratoNetError(
            f"site {site}: two files for channel '{d.iloc[0]['channel']}': {d.iloc[0]['path']} and {d.iloc[1]['path']}"
        )
    wide = long.pivot(index=keys, columns="channel", values="path")
    wide.columns = [f"{PATH_PREFIX}{c}" for c in wide.columns]
    wide = wide.reset_index()
    extra = [c for c in long.columns if c.startswith("Metadata_") and c not in keys]
    if extra:
        meta = long.drop_duplicates(keys)[keys + extra]
        wide = wide.merge(meta, on=keys, how="left")
    wide["Metadata_Site"] = wide["Metadata_Site"].astype(int)
    return wide.sort_values(keys, kind="stable").reset_index(drop=True)


def _order_channels(wide: pd.DataFrame, channel_map: dict[str, str]) -> pd.DataFrame:
    """Put Path_ columns in channel-map order (then any unmapped ones), metadata first."""
    order = [f"{PATH_PREFIX}{n}" for n in channel_map.values()]
    paths = [c for c in order if c in wide.columns] + sorted(
        c for c in wide.columns if c.startswith(PATH_PREFIX) and c not in order
    )
    meta = [c for c in wide.columns if not c.startswith(PATH_PREFIX)]
    return wide[meta + paths]


def phenix(
    source: str | Path,
    channel_map: str | dict | None = JUMP_PHENIX_CHANNELS,
    plate: str | None = None,
    plane: int | None = None,
) -> pd.DataFrame:
    """Index a Phenix/Opera export (``r01c01f01p01-ch1sk1fk1fl1.tiff``).

    Parameters
    ----------
    source : path
        Folder searched recursively.
    channel_map : str or dict
        ``ch`` number -> channel name; default JUMP's ``1=Mito,2=AGP,3=RNA,4=ER,5=DNA``.
    plate : str, optional
        Plate name for every file; default a ``BR\\d+`` barcode in each file's path, else the folder name.
    plane : int, optional
        Plane (``pNN``) to keep; default the first plane (``p01``).
    """
    source = Path(source).resolve()
    cmap = parse_channel_map(channel_map if channel_map is not None else JUMP_PHENIX_CHANNELS)
    files = list_images(source)
    want_plane = 1 if plane is None else int(plane)
    records, planes_seen = [], set()
    for f in files:
        m = PHENIX_RE.match(f.name)
        if not m:
            continue
        planes_seen.add(int(m["plane"]))
        if int(m["plane"]) != want_plane:
            continue
        records.append({
            "Metadata_Plate": plate or plate_from_path(f, source),
            "Metadata_Well": well_from_row_col(int(m["row"]), int(m["col"])),
            "Metadata_Site": int(m["site"]),
            "channel": channel_name(m["channel"], cmap),
            "path": str(f),
        })
    if not records:
        if planes_seen:
            raise InputFileError(str(source), f"no Phenix images of plane {want_plane} (planes found: {sorted(planes_seen)})")
        raise InputFileError(str(source), "no Phenix image files (expected names like r01c01f01p01-ch1sk1fk1fl1.tiff)")
    return _order_channels(to_wide(records, source), cmap)


def imagexpress(
    source: str | Path,
    channel_map: str | dict | None = IMAGEXPRESS_CHANNELS,
    plate: str | None = None,
) -> pd.DataFrame:
    """Index an ImageXpress export (``<plate>_<well>_s<site>_w<ch>[<UUID>].tif``; ``_thumb`` files ignored).

    The plate is the file-name prefix when present, else ``plate``, else the folder name.
    """
    source = Path(source).resolve()
    cmap = parse_channel_map(channel_map if channel_map is not None else IMAGEXPRESS_CHANNELS)
    records = []
    for f in list_images(source):
        if "_thumb" in f.name.lower():
            continue
        m = IMAGEXPRESS_RE.match(f.name)
        if not m:
            continue
        records.append({
            "Metadata_Plate": plate or m["plate"] or plate_from_path(f, source),
            "Metadata_Well": normalise_well(m["well"]),
            "Metadata_Site": int(m["site"]),
            "channel": channel_name(m["channel"], cmap, prefix="w"),
            "path": str(f),
        })
    if not records:
        raise InputFileError(str(source), "no ImageXpress image files (expected names like PLATE_A01_s1_w1.tif)")
    return _order_channels(to_wide(records, source), cmap)


def regex(
    source: str | Path,
    pattern: str,
    channel_map: str | dict | None = None,
    plate: str | None = None,
) -> pd.DataFrame:
    """Index files whose path (relative to ``source``, ``/``-separated) matches ``pattern``.

    Named groups: ``channel`` (required), ``well`` or ``row`` + ``col`` (required; a row may be a letter or a
    number), ``plate`` (else ``plate`` or the folder name) and ``site`` (else 1). Any other named group becomes a
    ``Metadata_<group>`` column.
    """
    source = Path(source).resolve()
    if not pattern:
        raise ConfigError("layout 'regex' needs --pattern with named groups, e.g. (?P<well>[A-P]\\d\\d)_s(?P<site>\\d)_w(?P<channel>\\d)")
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"bad --pattern '{pattern}': {exc}") from exc
    groups = set(rx.groupindex)
    if "channel" not in groups or not ("well" in groups or {"row", "col"} <= groups):
        raise ConfigError(f"--pattern must have named groups 'channel' and 'well' (or 'row' and 'col'); got {sorted(groups)}")
    cmap = parse_channel_map(channel_map)
    records = []
    for f in list_images(source):
        rel = f.relative_to(source).as_posix()
        m = rx.search(rel)
        if not m:
            continue
        g = m.groupdict()
        if g.get("well"):
            well = normalise_well(g["well"])
        else:
            r = g["row"]
            row = int(r) if str(r).isdigit() else ord(str(r).upper()) - ord("A") + 1
            well = well_from_row_col(row, int(g["col"]))
        rec = {
            "Metadata_Plate": g.get("plate") or plate or plate_from_path(f, source),
            "Metadata_Well": well,
            "Metadata_Site": int(g["site"]) if g.get("site") else 1,
            "channel": channel_name(g["channel"], cmap),
            "path": str(f),
        }
        for k, v in g.items():
            if k not in ("plate", "well", "row", "col", "site", "channel") and v is not None:
                rec[f"Metadata_{k}"] = v
        records.append(rec)
    if not records:
        raise InputFileError(str(source), f"no file matches --pattern '{pattern}'")
    return _order_channels(to_wide(records, source), cmap)
