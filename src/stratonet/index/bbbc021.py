"""BBBC021 (Caie et al., MCF-7): image files plus ``BBBC021_v1_image.csv``.

Channels: DAPI -> DNA, Tubulin, Actin. Site numbers come from the file names' ``_s<N>_`` (else the order of the
files within a well). Compound and concentration become ``Metadata_Compound`` / ``Metadata_Concentration`` and
``Metadata_pert_iname`` / ``Metadata_concentration``; if ``BBBC021_v1_moa.csv`` lies beside the image table,
``Metadata_moa`` is joined by compound and concentration (DMSO -> ``control``, ``Metadata_control_type`` negcon).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.errors import InputFileError
from stratonet.index.loaddata import join_path
from stratonet.index.schema import PATH_PREFIX, normalise_well
from stratonet.core.progress import get_logger
from stratonet.core.tables import read_table

CHANNELS = {"DAPI": "DNA", "Tubulin": "Tubulin", "Actin": "Actin"}
IMAGE_TABLE_NAMES = ("BBBC021_v1_image.csv", "BBBC021_v1_image.csv.gz")
MOA_TABLE_NAME = "BBBC021_v1_moa.csv"
_SITE_RE = re.compile(r"_s(\d+)_", re.IGNORECASE)


def find_image_table(source: Path) -> tuple[Path, Path]:
    """``(image_table, image_root)``: ``source`` is the table (root = its folder) or a folder holding it."""
    if source.is_file():
        return source, source.parent
    if source.is_dir():
        for name in IMAGE_TABLE_NAMES:
            if (source / name).exists():
                return source / name, source
        raise InputFileError(str(source), f"no {IMAGE_TABLE_NAMES[0]} in this folder (give its path as SOURCE)")
    raise InputFileError(str(source), "not found")


def read_moa(path: Path) -> pd.DataFrame:
    """BBBC021_v1_moa.csv (old-Mac CR line endings accepted) -> compound, concentration, moa."""
    text = path.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    from io import StringIO

    return pd.read_csv(StringIO(text))


def bbbc021(source: str | Path, image_root: str | Path | None = None, plate: str | None = None) -> pd.DataFrame:
    """Index BBBC021 images.

    Parameters
    ----------
    source : path
        ``BBBC021_v1_image.csv(.gz)`` or the folder holding it.
    image_root : path, optional
        Folder under which the table's ``Image_PathName_*`` folders (``Week1/Week1_22123``) lie; default the
        table's folder. Plates whose folder is absent (not downloaded) are left out with a log message; an
        error is raised if none is present.
    plate : str, optional
        Only this plate.
    """
    table, root = find_image_table(Path(source))
    root = (Path(image_root) if image_root else root).resolve()
    df = read_table(table)
    need = [f"Image_FileName_{c}" for c in CHANNELS] + ["Image_Metadata_Plate_DAPI", "Image_Metadata_Well_DAPI"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputFileError(str(table), f"not a BBBC021 image table: missing {missing}")
    if plate:
        df = df[df["Image_Metadata_Plate_DAPI"].astype(str) == str(plate)]
        if df.empty:
            raise InputFileError(str(table), f"no images of plate '{plate}'")
    folders = df["Image_PathName_DAPI"].astype(str)
    present = {f: (root / f).is_dir() for f in folders.unique()}
    absent = sorted(f for f, ok in present.items() if not ok)
    if len(absent) == len(present):
        raise InputFileError(str(root), f"none of the {len(present)} BBBC021 plate folders (e.g. {absent[0]}) is here")
    if absent:
        get_logger().info("bbbc021: %d plate folder(s) absent under %s, left out: %s", len(absent), root, absent)
    df = df[folders.map(present)].reset_index(drop=True)
    out = pd.DataFrame({
        "Metadata_Plate": df["Image_Metadata_Plate_DAPI"].astype(str),
        "Metadata_Well": [normalise_well(w) for w in df["Image_Metadata_Well_DAPI"]],
    })
    sites = [_SITE_RE.search(str(n)) for n in df["Image_FileName_DAPI"]]
    if all(sites):
        out["Metadata_Site"] = [int(m.group(1)) for m in sites]
    else:
        out["Metadata_Site"] = out.groupby(["Metadata_Plate", "Metadata_Well"]).cumcount() + 1
    if "Replicate" in df:
        out["Metadata_Replicate"] = df["Replicate"]
    if "Image_Metadata_Compound" in df:
        out["Metadata_Compound"] = df["Image_Metadata_Compound"]
        out["Metadata_pert_iname"] = df["Image_Metadata_Compound"]
    if "Image_Metadata_Concentration" in df:
        out["Metadata_Concentration"] = df["Image_Metadata_Concentration"]
        out["Metadata_concentration"] = df["Image_Metadata_Concentration"]
    moa_path = table.parent / MOA_TABLE_NAME
    if moa_path.exists() and "Metadata_Compound" in out:
        moa = read_moa(moa_path)
        key = {(str(c), round(float(x), 6)): m for c, x, m in zip(moa["compound"], moa["concentration"], moa["moa"])}
        out["Metadata_moa"] = pd.Series([
            key.get((str(c), round(float(x), 6))) for c, x in zip(out["Metadata_Compound"], out["Metadata_Concentration"])
        ], index=out.index, dtype=object)
        dmso = out["Metadata_Compound"].astype(str) == "DMSO"
        out.loc[dmso, "Metadata_moa"] = "control"
        out["Metadata_control_type"] = np.where(dmso, "negcon", "trt")
    for src, ch in CHANNELS.items():
        pcol = f"Image_PathName_{src}"
        out[f"{PATH_PREFIX}{ch}"] = [join_path(f, n, root) for f, n in zip(df[pcol], df[f"Image_FileName_{src}"])]
    return out
