"""Nucleus centres for single-cell crops: from a CellProfiler-style table, or a minimal Otsu fallback on DNA.

The full segmentation lives in the classical-features stage; this fallback only finds centres to crop around.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.errors import InputFileError
from stratonet.core.tables import SITE_KEYS, read_table

_X_COLUMNS = ["Nuclei_Location_Center_X", "Location_Center_X"]
_Y_COLUMNS = ["Nuclei_Location_Center_Y", "Location_Center_Y"]
_ALIASES = {"Image_Metadata_Site": "Metadata_Site", "Image_Metadata_Well": "Metadata_Well",
            "Image_Metadata_Plate": "Metadata_Plate"}


def read_centers(path: str | Path) -> dict[tuple[str, str, str], np.ndarray]:
    """Read nucleus centres per site from a table.

    The table needs ``Metadata_Plate``, ``Metadata_Well``, ``Metadata_Site`` and ``Nuclei_Location_Center_X/Y`` (or
    ``Location_Center_X/Y``). A CellProfiler ``Nuclei.csv`` without site columns is joined on ``ImageNumber`` with
    the ``Image.csv`` (or ``.csv.gz``) beside it.

    Returns
    -------
    dict
        ``(plate, well, site)`` as strings -> ``(N, 2)`` array of (y, x) centres.
    """
    p = Path(path)
    df = read_table(p).rename(columns=_ALIASES)
    xcol = next((c for c in _X_COLUMNS if c in df.columns), None)
    ycol = next((c for c in _Y_COLUMNS if c in df.columns), None)
    if xcol is None or ycol is None:
        raise InputFileError(str(p), f"no nucleus centre columns (need one of {_X_COLUMNS} and its _Y partner)")
    missing = [k for k in SITE_KEYS if k not in df.columns]
    if missing and "ImageNumber" in df.columns:
        image = next((p.with_name(n) for n in ("Image.csv", "Image.csv.gz", "Image.parquet")
                      if p.with_name(n).exists()), None)
        if image is None:
            raise InputFileError(str(p), f"lacks {missing} and there is no Image.csv beside it to join on ImageNumber")
        img = read_table(image).rename(columns=_ALIASES)
        lacking = [k for k in SITE_KEYS if k not in img.columns]
        if lacking:
            raise InputFileError(str(image), f"lacks {lacking}")
        df = df.drop(columns=[k for k in SITE_KEYS if k in df.columns]).merge(
            img[["ImageNumber"] + SITE_KEYS], on="ImageNumber", how="left")
        missing = []
    if missing:
        raise InputFileError(str(p), f"lacks site column(s) {missing}")
    df = df.dropna(subset=[xcol, ycol])
    out = {}
    for key, grp in df.groupby([df[k].astype(str) for k in SITE_KEYS], sort=False):
        out[tuple(key)] = grp[[ycol, xcol]].to_numpy(dtype=np.float64)
    return out


def otsu_centers(dna: np.ndarray, min_area: int = 30, sigma: float = 2.0) -> np.ndarray:
    """Centroids ``(N, 2)`` (y, x) of Otsu-thresholded, smoothed DNA blobs of at least ``min_area`` pixels.

    A deliberately minimal fallback: touching nuclei are not split.
    """
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    img = ndi.gaussian_filter(np.asarray(dna, dtype=np.float32), sigma)
    if float(img.max()) <= float(img.min()):
        return np.zeros((0, 2))
    mask = img > threshold_otsu(img)
    labels, n = ndi.label(mask)
    if n == 0:
        return np.zeros((0, 2))
    areas = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(areas >= min_area) + 1
    if keep.size == 0:
        return np.zeros((0, 2))
    return np.asarray(ndi.center_of_mass(mask, labels, keep), dtype=np.float64).reshape(-1, 2)


def site_key(row: pd.Series | dict) -> tuple[str, str, str]:
    """``(plate, well, site)`` of an index row, as strings."""
    return tuple(str(row[k]) for k in SITE_KEYS)  # type: ignore[return-value]
