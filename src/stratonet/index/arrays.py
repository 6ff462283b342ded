"""Array stacks: a folder of ``(C, H, W)`` ``.npy``/``.tif`` files (e.g. DeepProfiler-style single-cell crops)
described by an ``index.csv``.

The CSV needs a file column (``FileName``, ``File``, ``Path`` or ``Image_Name``, or ``file_column``) and plate and
well columns (``Metadata_Plate``/``Plate`` and ``Metadata_Well``/``Well``); ``Metadata_Site`` defaults to 1. Other
columns are kept as ``Metadata_*`` (a missing prefix is added), so a cell id such as ``Metadata_ObjectNumber``
travels with each crop.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stratonet.errors import ConfigError, InputFileError
from stratonet.index.checks import require_folder
from stratonet.index.loaddata import join_path
from stratonet.index.schema import STACK_CHANNELS, STACK_PATH, normalise_well
from stratonet.tables import read_table

FILE_COLUMNS = ("FileName", "File", "Path", "Image_Name", "filename", "file", "path")
INDEX_NAMES = ("index.csv", "index.csv.gz", "index.parquet")


def arrays(
    source: str | Path,
    channels: str | list[str] | None = None,
    file_column: str | None = None,
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
