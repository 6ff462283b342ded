"""Array stacks: a folder of ``(C, H, W)`` ``.npy``/``.tif`` files (e.g. DeepProfiler-style single-cell crops)
described by an ``index.csv``. Channels-last ``(H, W, C)`` stacks and 2-D single-channel files are recognised by
their shape (see :func:`stack_layout`).

The CSV needs a file column (``FileName``, ``File``, ``Path`` or ``Image_Name``, or ``file_column``) and plate and
well columns (``Metadata_Plate``/``Plate`` and ``Metadata_Well``/``Well``); ``Metadata_Site`` defaults to 1. Other
columns are kept as ``Metadata_*`` (a missing prefix is added), so a cell id such as ``Metadata_ObjectNumber``
travels with each crop.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stratonet.core.errors import ConfigError, InputFileError
from stratonet.index.checks import require_folder
from stratonet.index.loaddata import join_path
from stratonet.index.schema import STACK_CHANNELS, STACK_PATH, as_chw, normalise_well, stack_layout  # noqa: F401
from stratonet.core.tables import read_table

FILE_COLUMNS = ("FileName", "File", "Path", "Image_Name", "filename", "file", "path")
COLUMN_KEYS = {"plate": "Metadata_Plate", "well": "Metadata_Well", "site": "Metadata_Site",
               "objectnumber": "Metadata_ObjectNumber", "object": "Metadata_ObjectNumber"}
#: Keys matched whatever their case (``ObjectNumber=cell_index`` names the crop id column); others keep theirs.
_KNOWN_KEYS = set(COLUMN_KEYS) | {"file"}


def parse_columns(spec: str | dict | None) -> dict[str, str]:
    """``"plate=Image_Metadata_Plate_DAPI,well=well,file=FileName_Crop"`` -> {key: source column}."""
    from stratonet.core.errors import ConfigError

    if not spec:
        return {}
    if isinstance(spec, dict):
        return dict(spec)
    out = {}
    for item in str(spec).split(","):
        if not item.strip():
            continue
        key, sep, col = item.partition("=")
        if not sep or not key.strip() or not col.strip():
            raise ConfigError(f"--columns: expected key=column pairs, e.g. plate=Image_Metadata_Plate, got {item!r}")
        key = key.strip()
        out[key.lower() if key.lower() in _KNOWN_KEYS else key] = col.strip()
    return out
INDEX_NAMES = ("index.csv", "index.csv.gz", "index.parquet")


def arrays(
    source: str | Path,
    channels: str | list[str] | None = None,
    file_column: str | None = None,
    columns: str | dict | None = None,
) -> pd.DataFrame:
    """Index a folder of array stacks.

    Parameters
    ----------
    source : path
        The folder (holding ``index.csv``) or the CSV itself.
    channels : str or list of str
        Channel order of every stack, e.g. ``"DNA,ER,RNA,AGP,Mito"``; or a ``Stack_Channels`` column in the CSV.
    file_column : str, optional
        Column naming each file (relative to the folder).
    columns : str or dict, optional
        Which CSV column holds what, e.g. ``"plate=Image_Metadata_Plate_DAPI,well=well,site=field,file=crop"``
        (keys plate, well, site, file and objectnumber, in any case; any other key ``k`` becomes ``Metadata_k``,
        spelled as given). ``ObjectNumber=cell_index`` tells apart crops cut from the same site.
    """
    source = Path(source)
    if source.is_dir():
        require_folder(source, "array stacks")
        table = next((source / n for n in INDEX_NAMES if (source / n).exists()), None)
        if table is None:
            raise InputFileError(str(source), f"no index.csv describing the stacks in this folder")
    else:
        table = source
    df = read_table(table)
    folder = table.parent.resolve()
    mapping = parse_columns(columns)
    absent = {k: c for k, c in mapping.items() if c not in df.columns}
    if absent:
        raise InputFileError(str(table), f"--columns names column(s) not in the table: {absent} "
                                         f"(columns: {list(df.columns)[:8]})")
    if "file" in mapping:
        file_column = file_column or mapping.pop("file")
    renamed = {c: COLUMN_KEYS.get(k, f"Metadata_{k}") for k, c in mapping.items()}
    clash = [new for old, new in renamed.items() if new in df.columns and new != old]
    df = df.drop(columns=clash).rename(columns=renamed)
    fcol = file_column or next((c for c in FILE_COLUMNS if c in df.columns), None)
    if fcol is None or fcol not in df.columns:
        raise InputFileError(str(table), f"no file column (expected one of {list(FILE_COLUMNS)} or --file-column)")
    if isinstance(channels, str):
        channels = [c.strip() for c in channels.split(",") if c.strip()]
    if not channels and STACK_CHANNELS not in df.columns:
        raise ConfigError("layout 'arrays' needs --channels (the channel order of each stack, e.g. DNA,ER,RNA,AGP,Mito)")
    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        if c in (fcol, STACK_CHANNELS):
            continue
        name = c if c.startswith("Metadata_") else f"Metadata_{c}"
        if name not in out:
            out[name] = df[c]
    for key in ("Plate", "Well"):
        if f"Metadata_{key}" not in out:
            raise InputFileError(str(table), f"no Metadata_{key} (or {key}) column")
    out["Metadata_Plate"] = out["Metadata_Plate"].astype(str)
    out["Metadata_Well"] = [normalise_well(w) for w in out["Metadata_Well"]]
    out["Metadata_Site"] = out["Metadata_Site"].astype(int) if "Metadata_Site" in out else 1
    out[STACK_PATH] = [join_path(None, n, folder) for n in df[fcol]]
    out[STACK_CHANNELS] = df[STACK_CHANNELS].astype(str) if STACK_CHANNELS in df else "|".join(channels)
    first = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)
