"""CellProfiler LoadData CSVs, including JUMP's ``load_data_with_illum.csv``.

Per channel ``FileName_Orig<Ch>`` + ``PathName_Orig<Ch>`` give ``Path_<Ch>``; ``FileName_Illum<Ch>`` +
``PathName_Illum<Ch>`` give ``Illum_<Ch>``. Every ``Metadata_*`` column is kept. A PathName may be a local folder
(relative ones are resolved against the CSV's folder) or an fsspec URL such as ``s3://...`` (joined with ``/``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.errors import InputFileError, StratoNetError
from stratonet.index.schema import ILLUM_PREFIX, PATH_PREFIX, normalise_well, well_from_row_col
from stratonet.core.progress import warn
from stratonet.core.remote import is_url, parent_url
from stratonet.core.tables import read_table

_FILE_RE = re.compile(r"^(?:Image_)?FileName_(Orig|Illum)(\w+)$")


def join_path(folder: object, name: object, base: Path | str) -> str | None:
    """PathName + FileName -> one path or URL; ``None`` when either is empty.

    ``base`` (the table's folder, a local path or a URL) resolves relative names.
    """
    if _empty(name):
        return None
    name = str(name)
    if is_url(name) or Path(name).is_absolute():
        return name
    if _empty(folder):
        return _under(base, name)
    folder = str(folder)
    if is_url(folder):
        return folder.rstrip("/") + "/" + name
    p = Path(folder)
    return str(p / name) if p.is_absolute() else _under(_under(base, folder), name)


def _under(base: Path | str, rel: str) -> str:
    """``rel`` below ``base``, keeping a URL base a URL."""
    if is_url(base):
        rel = rel.replace("\\", "/")
        return str(base).rstrip("/") + "/" + (rel[2:] if rel.startswith("./") else rel)
    return str(Path(base) / rel)


def _empty(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def loaddata(source: str | Path) -> pd.DataFrame:
    """Read a LoadData CSV into index rows.

    Parameters
    ----------
    source : path
        ``load_data.csv`` or ``load_data_with_illum.csv`` (``.csv.gz``/Parquet also read). ``Image_``-prefixed
        column names (CellProfiler's Image table) are accepted too.

    Raises
    ------
    InputFileError
        If the table has no ``FileName_Orig<Ch>`` columns or lacks plate/well.
    """
    remote = is_url(source)
    source = str(source) if remote else Path(source)
    df = read_table(source)
    df.columns = [c[len("Image_"):] if c.startswith("Image_") else c for c in df.columns]
    base = parent_url(source) if remote else source.parent.resolve()
    files = {c: _FILE_RE.match(c) for c in df.columns}
    orig = {m.group(2): c for c, m in files.items() if m and m.group(1) == "Orig"}
    illum = {m.group(2): c for c, m in files.items() if m and m.group(1) == "Illum"}
    if not orig:
        raise InputFileError(str(source), "not a LoadData table: no FileName_Orig<Channel> columns")
    named = {m.group(1) for c in df.columns if (m := re.match(r"^PathName_Orig(\w+)$", c))} | set(illum)
    pathless = sorted(named - set(orig))
    if pathless:
        warn(f"{source}: no column(s) {', '.join('FileName_Orig' + ch for ch in pathless)} (only their PathName_ or "
             f"Illum columns); channel(s) {', '.join(pathless)} left out of the index")
    out = pd.DataFrame(index=df.index)
    meta = [c for c in df.columns if c.startswith("Metadata_")]
    for c in meta:
        out[c] = df[c]
    if "Metadata_Plate" not in out:
        raise InputFileError(str(source), "LoadData table has no Metadata_Plate column")
    if "Metadata_Well" not in out:
        if {"Metadata_Row", "Metadata_Col"} <= set(out.columns):
            out["Metadata_Well"] = [well_from_row_col(r, c) for r, c in zip(out["Metadata_Row"], out["Metadata_Col"])]
        else:
            raise InputFileError(str(source), "LoadData table has no Metadata_Well (or Metadata_Row/Metadata_Col) column")
    out["Metadata_Plate"] = out["Metadata_Plate"].astype(str)
    try:
        out["Metadata_Well"] = [normalise_well(w) for w in out["Metadata_Well"]]
    except StratoNetError as exc:  # name the table, not only the well
        raise InputFileError(str(source), f"Metadata_Well: {exc}") from exc
    if "Metadata_Site" not in out:
        site_col = "Metadata_FieldID" if "Metadata_FieldID" in out else None
        out["Metadata_Site"] = out[site_col] if site_col else out.groupby(["Metadata_Plate", "Metadata_Well"]).cumcount() + 1
        warn(f"{source}: no Metadata_Site column; " + ("sites taken from Metadata_FieldID" if site_col else
             "sites numbered 1, 2, ... within each well in file order"))
    out["Metadata_Site"] = out["Metadata_Site"].astype(int)
    for ch, col in orig.items():
        pcol = f"PathName_Orig{ch}"
        folders = df[pcol] if pcol in df else [None] * len(df)
        out[f"{PATH_PREFIX}{ch}"] = [join_path(f, n, base) for f, n in zip(folders, df[col])]
    for ch, col in illum.items():
        if ch not in orig:
            continue
        pcol = f"PathName_Illum{ch}"
        folders = df[pcol] if pcol in df else [None] * len(df)
        out[f"{ILLUM_PREFIX}{ch}"] = [join_path(f, n, base) for f, n in zip(folders, df[col])]
    first = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)
