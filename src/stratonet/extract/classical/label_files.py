"""Find external label images (masks or CellProfiler outlines) for index rows by a file-name pattern.

A pattern is a file name (glob characters allowed) with placeholders filled from the row:

- ``{plate}``, ``{well}``, ``{site}``: the row's ``Metadata_Plate`` / ``Metadata_Well`` / ``Metadata_Site``;
- ``{stem_<Channel>}``: the file name, without extension, of that channel's image, e.g. ``{stem_DNA}``;
- ``{<Column>}``: any other column of the row, e.g. ``{Metadata_Site}``.

CellProfiler's own names then work without renaming, e.g. ``NucleiOutlines_{plate}_{well}_{site}.tiff`` or
``{stem_DNA}_nuclei_outlines.png``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stratonet.core.errors import ConfigError, SiteError, StratoNetError

LABEL_COLUMNS = {"Nuclei": "Labels_Nuclei", "Cells": "Labels_Cells"}


def _fields(row: dict) -> dict[str, str]:
    out = {str(k): str(v) for k, v in row.items()}
    out.update(plate=str(row.get("Metadata_Plate")), well=str(row.get("Metadata_Well")),
               site=str(row.get("Metadata_Site")))
    for k, v in row.items():
        if str(k).startswith("Path_") and isinstance(v, str) and v:
            name = v.rstrip("/").rsplit("/", 1)[-1]
            for ext in (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".png", ".npy", ".jpg"):
                if name.lower().endswith(ext):
                    name = name[: -len(ext)]
                    break
            out[f"stem_{str(k)[5:]}"] = name
    return out


def find_label_file(row: dict, folder: str | Path, pattern: str) -> Path | None:
    """The one file in ``folder`` matching ``pattern`` filled from ``row``; None if there is none.

    Raises
    ------
    ConfigError
        If the pattern names a placeholder the row does not have.
    SiteError
        If several files match.
    """
    from stratonet.index.schema import site_name

    try:
        name = pattern.format(**_fields(row))
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"label pattern {pattern!r}: unknown placeholder {exc} (use plate, well, site, "
                          "stem_<Channel> or an index column)") from exc
    hits = sorted(Path(folder).glob(name))
    if len(hits) > 1:
        raise SiteError(site_name(row), f"{len(hits)} label files match {name!r} in {folder}: "
                                        f"{[h.name for h in hits[:3]]}")
    return hits[0] if hits else None


def add_label_columns(index: pd.DataFrame, folder: str | Path, nuclei: str, cells: str | None = None
                      ) -> tuple[pd.DataFrame, int]:
    """Add ``Labels_Nuclei`` (and ``Labels_Cells``) columns: the files matching the patterns, row by row.

    Returns the index and the number of rows without a nuclei label file (their column is empty).
    """
    if not Path(folder).is_dir():
        raise StratoNetError(f"--labels-dir {folder}: not a folder")
    out = index.copy()
    rows = out.to_dict("records")
    for comp, pattern in (("Nuclei", nuclei), ("Cells", cells)):
        if pattern:
            found = [find_label_file(r, folder, pattern) for r in rows]
            out[LABEL_COLUMNS[comp]] = [str(f) if f else None for f in found]
    return out, int(out[LABEL_COLUMNS["Nuclei"]].isna().sum())
