"""The plate viewer's per-cell view: per well, the cells nearest the well's median cell and a random sample, with
their key measurements, from a classical ``single_cell.parquet`` (``extract classical``).

Only positions and a few measurements go into the report; the viewer cuts each cell out of the site's embedded
full-resolution images, so the per-cell view costs a few bytes per cell.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.report import numbers as N

KEYS = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
#: Cells shown per well and per kind (nearest the median, random).
PER_WELL = 6
#: Above this many cells a single-cell table is sampled (seeded) before picking, to bound the report's memory.
MAX_CELLS = 2_000_000


def single_cell_tables(run: Path) -> list[Path]:
    """Every ``features/<name>/single_cell.parquet`` of a run (``extract classical`` writes one per folder)."""
    feats = Path(run) / "features"
    return sorted(feats.glob("*/single_cell.parquet")) if feats.is_dir() else []


def key_measurements(names: list[str], channels: list[str]) -> dict[str, str]:
    """Label -> column of the measurements shown under each cell: cell and nucleus area, mean intensity per channel,
    and for up to two non-DNA channels the nucleus / cytoplasm intensity ratio (a translocation readout)."""
    out = {}
    for col, label in (("Cells_AreaShape_Area", "cell area (px)"), ("Nuclei_AreaShape_Area", "nucleus area (px)")):
        if col in names:
            out[label] = col
    for ch in channels:
        col = f"Cells_Intensity_MeanIntensity_{ch}"
        if col in names:
            out[f"{ch} mean (cell)"] = col
    ratio = [ch for ch in channels if ch != "DNA" and f"Nuclei_Intensity_MeanIntensity_{ch}" in names
             and f"Cytoplasm_Intensity_MeanIntensity_{ch}" in names][:2]
    for ch in ratio:
        out[f"{ch} nucleus / cytoplasm"] = f"ratio:{ch}"
    return out


def _position(names: list[str]) -> tuple[str, str] | None:
    for comp in ("Cells", "Nuclei"):
        if f"{comp}_Location_Center_X" in names and f"{comp}_Location_Center_Y" in names:
            return f"{comp}_Location_Center_X", f"{comp}_Location_Center_Y"
    return None


def _read(path: Path, measures: dict[str, str], pos: tuple[str, str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    cols = set(KEYS) | set(pos)
    for col in measures.values():
        if col.startswith("ratio:"):
            ch = col[len("ratio:"):]
            cols |= {f"Nuclei_Intensity_MeanIntensity_{ch}", f"Cytoplasm_Intensity_MeanIntensity_{ch}"}
        else:
            cols.add(col)
    t = pq.read_table(path, columns=sorted(cols)).to_pandas()
    if len(t) > MAX_CELLS:
        t = t.sample(MAX_CELLS, random_state=0)
    for label, col in measures.items():
        if col.startswith("ratio:"):
            ch = col[len("ratio:"):]
            cyt = t[f"Cytoplasm_Intensity_MeanIntensity_{ch}"].replace(0, np.nan)
            t[col] = t[f"Nuclei_Intensity_MeanIntensity_{ch}"] / cyt
    return t.astype({k: str for k in KEYS})


def cell_picks(run: Path, channels: dict[str, list[str]], per_well: int = PER_WELL, seed: int = 0) -> dict:
    """:func:`table_picks` of every single-cell table of the run, merged by plate (the first table holding a plate
    serves it); ``table``, ``labels`` and ``crop`` are then per plate."""
    out: dict = {"table": {}, "labels": {}, "crop": {}, "wells": {}}
    for path in single_cell_tables(run):
        one = table_picks(run, path, channels, per_well, seed)
        for plate, wells in one.get("wells", {}).items():
            if plate in out["wells"]:
                continue
            out["wells"][plate] = wells
            out["table"][plate], out["labels"][plate] = one["table"], one["labels"]
            out["crop"][plate] = one["crop"][plate]
    return out if out["wells"] else {}


def table_picks(run: Path, path: Path, channels: dict[str, list[str]], per_well: int = PER_WELL,
                seed: int = 0) -> dict:
    """Per plate and well of one single-cell table, the cells nearest the well's median cell and a random sample.

    Cells are compared on robust z-scores (plate median and MAD) of the key measurements, so no measurement
    dominates by its scale.

    Returns
    -------
    dict
        ``{"table": relative path, "labels": [...], "crop": {plate: px}, "wells": {plate: {well: [cell, ...]}}}``
        with each cell ``{"site", "x", "y", "pick": "median" | "random", "m": [formatted values]}``; empty when
        the run has no single-cell table with cell positions.
    """
    import warnings

    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    pos = _position(names)
    all_channels = sorted({c for chans in channels.values() for c in chans})
    measures = key_measurements(names, all_channels)
    if pos is None or not measures or not all(k in names for k in KEYS):
        return {}
    t = _read(path, measures, pos)
    rng = np.random.default_rng(seed)
    out = {"table": path.relative_to(run).as_posix(), "labels": list(measures), "crop": {}, "wells": {}}
    cols = list(measures.values())
    for plate, grp in t.groupby("Metadata_Plate", sort=False):
        X = grp[cols].to_numpy(np.float64)
        with warnings.catch_warnings():  # an all-NaN measurement gives NaN, then 0 after nan_to_num: no signal
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(X, axis=0)
            mad = 1.4826 * np.nanmedian(np.abs(X - med), axis=0)
        Z = np.nan_to_num((X - med) / np.where(mad > 0, mad, 1.0))
        area = grp.get("Cells_AreaShape_Area", grp.get("Nuclei_AreaShape_Area"))
        side = 2.5 * np.sqrt(float(np.nanmedian(area))) if area is not None and area.notna().any() else 64.0
        out["crop"][str(plate)] = int(np.clip(side, 32, 200))
        wells = out["wells"].setdefault(str(plate), {})
        for well, idx in pd.Series(np.arange(len(grp))).groupby(grp["Metadata_Well"].to_numpy()):
            idx = idx.to_numpy()
            z = Z[idx]
            near = idx[np.argsort(np.linalg.norm(z - np.median(z, axis=0), axis=1), kind="stable")[:per_well]]
            rest = np.setdiff1d(idx, near)
            rand = rng.choice(rest, size=min(per_well, len(rest)), replace=False) if len(rest) else rest
            wells[str(well)] = [_cell(grp.iloc[i], pos, cols, kind) for kind, sel in (("median", near),
                                                                                      ("random", rand)) for i in sel]
    return out


def _cell(r, pos: tuple[str, str], cols: list[str], kind: str) -> dict:
    return {"site": str(r["Metadata_Site"]), "x": round(float(r[pos[0]]), 1), "y": round(float(r[pos[1]]), 1),
            "pick": kind, "m": [N.fmt_value(r[c], "num", 3) for c in cols]}
