"""Classical (CellProfiler-style) features for every site of an index, in parallel, resumable.

Outputs in ``out_dir``:

- ``single_cell.parquet``: one row per cell: ``Metadata_*``, ``ObjectNumber``, parent links, ``Location_*``,
  ``Nuclei_*`` / ``Cells_*`` / ``Cytoplasm_*`` features;
- ``site.parquet`` (median per site) and ``site_mean.parquet`` (mean per site), with ``Count_Nuclei`` and
  ``Count_Cells``;
- ``well.parquet`` (median of the well's cells) and ``well_mean.parquet``;
- ``site.manifest.json``: configuration, versions, device, wall time, core-seconds per site, CPU % / memory %;
- ``masks/<plate>_<well>_<site>_{Nuclei,Cells}.tiff`` with ``save_masks``; ``errors.csv`` with ``on_error="skip"``.

This module is the stage: what one site gives (:func:`process_site`) and how the tables are finished
(:func:`finish_tables`). How a run over an index executes (worker processes, the resumable writer, the output lock,
the manifest) lives in :mod:`stratonet.runtime.classical_run`; call :func:`stratonet.runtime.extract_classical`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.extract.classical.measure import GROUPS, MeasureParams
from stratonet.extract.classical.segment import SegmentParams
from stratonet.core.errors import SiteError, StratoNetError
from stratonet.core.tables import SITE_KEYS, stamp_provenance

LABEL_COLUMNS = {"Nuclei": "Labels_Nuclei", "Cells": "Labels_Cells"}


@dataclass
class ClassicalConfig:
    """Everything that shapes the classical features of a site."""

    groups: list[str] = field(default_factory=lambda: list(GROUPS))
    dna_channel: str = "DNA"
    cell_channels: list[str] = field(default_factory=lambda: ["AGP", "ER"])
    segmentation: str = "classic"  # classic | cellpose
    drop_border: bool = False
    center_object: bool = False  # single-cell crops: measure only the cell at the image centre
    save_masks: bool = False
    labels_dir: str | None = None
    labels_nuclei_pattern: str | None = None  # e.g. "NucleiOutlines_{plate}_{well}_{site}.tiff"
    labels_cells_pattern: str | None = None
    illum: bool = True
    bit_depth: int | str = "auto"  # "auto": each file's dtype (uint8 /255, uint16 /65535); an int: 2**n - 1
    segment: SegmentParams = field(default_factory=SegmentParams)
    measure: MeasureParams = field(default_factory=MeasureParams)

    def to_dict(self) -> dict:
        return asdict(self)


def scale_to_unit(img: np.ndarray) -> np.ndarray:
    """Scale raw intensities to [0, 1] as CellProfiler does: uint16 / 65535 (uint8 / 255), then clip.

    An integer array is scaled by its dtype. A float array has lost its stored dtype, so its range decides (a
    maximum above 255 means 16-bit data, above 1 means 8-bit data); that guess depends on the site's content, so
    :func:`process_site` does not use it: it scales every plane by its file's dtype (see ``ClassicalConfig.bit_depth``).
    """
    if np.issubdtype(np.asarray(img).dtype, np.integer):
        from stratonet.images.io import full_scale

        return np.clip(np.asarray(img, dtype=np.float32) / np.float32(full_scale(np.asarray(img))), 0.0, 1.0)
    x = np.asarray(img, dtype=np.float32)
    peak = float(x.max()) if x.size else 0.0
    if peak > 255:
        x = x / 65535.0
    elif peak > 1:
        x = x / 255.0
    return np.clip(x, 0.0, 1.0)


def _site_tag(row: dict) -> str:
    return f"{row['Metadata_Plate']}_{row['Metadata_Well']}_{row['Metadata_Site']}"


def _external_label_paths(row: dict, cfg: ClassicalConfig) -> dict[str, str]:
    """Label image paths of a site: index columns ``Labels_Nuclei`` / ``Labels_Cells`` or files in labels_dir."""
    found: dict[str, str] = {}
    for comp, col in LABEL_COLUMNS.items():
        v = row.get(col)
        if isinstance(v, str) and v:
            found[comp] = v
    if cfg.labels_dir and not found and cfg.labels_nuclei_pattern:
        from stratonet.extract.classical.label_files import find_label_file

        for comp, pattern in (("Nuclei", cfg.labels_nuclei_pattern), ("Cells", cfg.labels_cells_pattern)):
            hit = find_label_file(row, cfg.labels_dir, pattern) if pattern else None
            if hit is not None:
                found[comp] = str(hit)
        if "Nuclei" not in found:
            raise SiteError(f"{row['Metadata_Plate']}/{row['Metadata_Well']}/{row['Metadata_Site']}",
                            f"no nuclei label image matching '{cfg.labels_nuclei_pattern}' in {cfg.labels_dir}")
    elif cfg.labels_dir and not found:
        d = Path(cfg.labels_dir)
        for f in sorted(d.glob(f"{_site_tag(row)}_*")):
            low = f.name[len(_site_tag(row)):].lower()
            if "nuc" in low and "Nuclei" not in found:
                found["Nuclei"] = str(f)
            elif "cell" in low and "Cells" not in found:
                found["Cells"] = str(f)
        if "Nuclei" not in found:
            raise SiteError(f"{row['Metadata_Plate']}/{row['Metadata_Well']}/{row['Metadata_Site']}",
                            f"no nuclei label image '{_site_tag(row)}_*nuc*' in {d}")
    return found


def segment_row(row: dict, image: np.ndarray, channels: list[str], cfg: ClassicalConfig) -> tuple[dict, list[str]]:
    """Label images (Nuclei, Cells, Cytoplasm) of one site and notes on how they were made."""
    from stratonet.extract.classical.labels import read_labels, segment_cellpose
    from stratonet.extract.classical.segment import cytoplasm, segment_cells, segment_nuclei, segment_site
    from stratonet.index.schema import site_name

    notes: list[str] = []
    dna = image[channels.index(cfg.dna_channel)]
    external = _external_label_paths(row, cfg)
    cyto_chs = [c for c in cfg.cell_channels if c in channels]
    missing = [c for c in cfg.cell_channels if c not in channels]
    if not cyto_chs:
        cyto_chs = [c for c in channels if c != cfg.dna_channel]
    if missing and "Cells" not in external:  # cells are grown only when no cell labels are given
        notes.append(
            f"cell channel(s) {', '.join(missing)} of --cell-channels {','.join(cfg.cell_channels)} absent; cells "
            f"grown on {', '.join(cyto_chs) or 'nothing (nuclei dilated)'}"
        )
    cyto = np.mean([image[channels.index(c)] for c in cyto_chs], axis=0) if cyto_chs else None
    if external:
        nuclei = read_labels(external["Nuclei"]) if "Nuclei" in external else segment_nuclei(dna, cfg.segment)
        if nuclei.shape != dna.shape:
            raise SiteError(site_name(row), f"label image {external['Nuclei']} is {nuclei.shape}, image is {dna.shape}")
        if "Cells" in external:
            cells = read_labels(external["Cells"], seeds=nuclei, guide=cyto)
            if cells.shape != dna.shape:
                raise SiteError(site_name(row),
                                f"label image {external['Cells']} is {cells.shape}, image is {dna.shape}")
        elif cyto is not None:
            cells = segment_cells(cyto, nuclei, cfg.segment)
        else:
            cells = segment_site(dna, None, cfg.segment)["Cells"]
        masks = {"Nuclei": nuclei, "Cells": cells, "Cytoplasm": cytoplasm(cells, nuclei)}
        notes.append("labels loaded from files (--labels-dir or Labels_* index columns), not segmented")
    elif cfg.segmentation == "cellpose":
        masks = segment_cellpose(dna, cyto)
    else:
        masks = segment_site(dna, cyto, cfg.segment)
    return masks, notes


def _drop_border(masks: dict) -> dict:
    """Remove cells touching the image border, with their nuclei and cytoplasm (CellProfiler discards them)."""
    from stratonet.extract.classical.relate import parent_of
    from stratonet.extract.classical.segment import cytoplasm, touches_border

    cells, nuclei = masks["Cells"], masks["Nuclei"]
    bad_cells = np.flatnonzero(touches_border(cells)) + 1
    bad_nuc = set(np.flatnonzero(touches_border(nuclei)) + 1)
    parents = parent_of(cells, nuclei)
    bad_nuc |= {int(parents[c - 1]) for c in bad_cells if parents[c - 1] > 0}
    cells = np.where(np.isin(cells, bad_cells), 0, cells)
    nuclei = np.where(np.isin(nuclei, sorted(bad_nuc)), 0, nuclei)
    cells = np.where(np.isin(cells, np.flatnonzero(np.isin(parents, sorted(bad_nuc))) + 1), 0, cells)
    return {"Nuclei": nuclei, "Cells": cells, "Cytoplasm": cytoplasm(cells, nuclei)}


def _keep_center_object(masks: dict, site: str) -> dict:
    """Keep only the cell under the image centre (or nearest to it) and its nucleus; neighbours cut by the crop
    edge are removed, so they are neither measured nor counted."""
    from stratonet.extract.classical.segment import cytoplasm
    from stratonet.extract.classical.center import label_at

    cells, nuclei = masks["Cells"], masks["Nuclei"]
    h, w = cells.shape
    keep = label_at(cells, (h - 1) / 2, (w - 1) / 2, radius=max(h, w) // 8)
    if keep == 0:
        raise SiteError(site, "center-object: no segmented cell lies at the image centre")
    inside = cells == keep
    own = np.unique(nuclei[inside])
    cells = np.where(inside, cells, 0)
    nuclei = np.where(np.isin(nuclei, own[own > 0]) & inside, nuclei, 0)
    return {"Nuclei": nuclei, "Cells": cells, "Cytoplasm": cytoplasm(cells, nuclei)}


def nonfinite_to_nan(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Replace +-inf in the float columns of a feature table by NaN; return the table and counts per column.

    cp_measure divides by zero on degenerate objects (e.g. ``FormFactor`` of a one-pixel-thick cytoplasm);
    CellProfiler stores such values as NaN-like, and an inf would break normalisation far downstream.
    """
    counts: dict[str, int] = {}
    for col in table.columns:
        if table[col].dtype.kind == "f":
            bad = np.isinf(table[col].to_numpy())
            if bad.any():
                counts[col] = int(bad.sum())
                table[col] = table[col].mask(bad)
    return table, counts


def process_site(row: dict, channels: list[str], cfg: ClassicalConfig, out_dir: str | None = None) -> dict:
    """Segment and measure one site.

    Returns
    -------
    dict with ``cells`` (single-cell DataFrame), ``median`` and ``mean`` (one-row site DataFrames),
    ``cpu_s`` (process CPU seconds), ``notes``, ``n_objects`` (cells found) and ``nonfinite`` (column -> number
    of infinite values replaced by NaN).
    """
    from stratonet.extract.classical.aggregate import aggregate_cells
    from stratonet.extract.classical.measure import measure_site
    from stratonet.extract.classical.segment import touches_border
    from stratonet.index.schema import site_name
    from stratonet.images.io import load_index_row

    t0 = time.process_time()
    site = site_name(row)
    dtypes: set[str] = set()
    try:
        img = load_index_row(pd.Series(row), channels, illum=cfg.illum, bit_depth=cfg.bit_depth, dtypes=dtypes)
        img = np.clip(img, 0.0, 1.0)  # scaled by the files' dtype (or --bit-depth), the same for every site
        masks, notes = segment_row(row, img, channels, cfg)
        if cfg.drop_border:
            masks = _drop_border(masks)
        if cfg.center_object:
            masks = _keep_center_object(masks, site)
        cells = measure_site(img, channels, masks, cfg.groups, cfg.measure)
        cells, nonfinite = nonfinite_to_nan(cells)
    except StratoNetError:
        raise
    except Exception as exc:  # image content we cannot handle: name the site
        raise SiteError(site, f"{type(exc).__name__}: {exc}") from exc
    if out_dir and cfg.save_masks:
        import tifffile

        mdir = Path(out_dir) / "masks"
        mdir.mkdir(parents=True, exist_ok=True)
        for comp in ("Nuclei", "Cells"):
            tifffile.imwrite(mdir / f"{_site_tag(row)}_{comp}.tiff", masks[comp].astype(np.uint32),
                             compression="zlib")
    border_cells = touches_border(masks["Cells"])
    border_nuc = touches_border(masks["Nuclei"])
    if len(cells):
        cells["Cells_TouchesBorder"] = border_cells[cells["ObjectNumber"].to_numpy() - 1].astype(int)
        pn = cells["Cells_Parent_Nuclei"].to_numpy()
        cells["Nuclei_TouchesBorder"] = np.where(pn > 0, border_nuc[np.maximum(pn, 1) - 1], 0).astype(int)
    meta = {k: v for k, v in row.items() if str(k).startswith("Metadata_")}
    cells = pd.concat([pd.DataFrame({k: [v] * len(cells) for k, v in meta.items()}), cells], axis=1)
    counts = pd.DataFrame([{
        **meta,
        "Count_Nuclei": int(len(np.unique(masks["Nuclei"])) - (1 if (masks["Nuclei"] == 0).any() else 0)),
        "Count_Cells": int(len(np.unique(masks["Cells"])) - (1 if (masks["Cells"] == 0).any() else 0)),
    }])
    med = aggregate_cells(cells, SITE_KEYS, "median", counts)
    mean = aggregate_cells(cells, SITE_KEYS, "mean", counts)
    return {"cells": cells, "median": med, "mean": mean, "cpu_s": time.process_time() - t0, "notes": notes,
            "site": site, "dtypes": sorted(dtypes), "n_objects": int(counts["Count_Cells"].iloc[0]),
            "nonfinite": nonfinite}


def check_dna(row: dict, cfg: ClassicalConfig, channels: list[str]) -> None:
    """Raise :class:`SiteError` when a row has no DNA image (nuclei cannot be found without one)."""
    from stratonet.index.schema import site_name

    v = row.get(f"Path_{cfg.dna_channel}")
    stack = row.get("Path_Stack")
    if cfg.dna_channel in channels and (isinstance(v, str) and v or isinstance(stack, str) and stack):
        return
    have = [c for c in channels if isinstance(row.get(f"Path_{c}"), str) and row.get(f"Path_{c}")]
    raise SiteError(site_name(row), f"no {cfg.dna_channel} channel, needed to find nuclei (channels: {have or channels})")


TABLES = ("cells", "mean", "median")  # flushed in this order: a site is committed once its median row is on disk


def resume_signature(cfg: ClassicalConfig, channels: list[str], key_columns: list[str]) -> dict:
    """What shapes the rows of a classical output; a resume with another signature is refused."""
    sig = cfg.to_dict()
    sig.pop("save_masks", None)  # masks are a side output, not part of the tables
    return {**sig, "channels": list(channels), "key_columns": list(key_columns)}


def unique_rows(index: pd.DataFrame, keys: list[str], log) -> tuple[pd.DataFrame, int]:
    """Drop rows repeated verbatim (with a warning); refuse rows that share a key but differ."""
    from stratonet.index.schema import site_name

    exact = index.astype(str).duplicated(keep="first")
    if exact.any():
        log.warning("index: %d row(s) repeated verbatim; each is processed once", int(exact.sum()))
        index = index[~exact.to_numpy()]
    clash = index.duplicated(subset=keys, keep=False)
    if clash.any():
        r = index[clash].iloc[0]
        raise StratoNetError(f"index: {int(clash.sum())} rows share a key ({', '.join(keys)}) but differ, e.g. "
                             f"{site_name(r)}; make the rows unique (e.g. a Metadata_ObjectNumber column)")
    return index, int(exact.sum())


def aggregate_wells(out_dir: Path, provenance: dict) -> None:
    """Well tables (median, mean) from the single-cell table, one well at a time, with summed site counts."""
    import pyarrow.parquet as pq

    from stratonet.extract.classical.aggregate import aggregate_cells, well_counts
    from stratonet.core.tables import write_table

    sites = pd.read_parquet(out_dir / "site.parquet") if (out_dir / "site.parquet").exists() else pd.DataFrame()
    if sites.empty:
        return
    by = ["Metadata_Plate", "Metadata_Well"]
    counts = well_counts(sites, by)
    sc = out_dir / "single_cell.parquet"
    med_parts, mean_parts = [], []
    for plate, well in counts[by].itertuples(index=False, name=None):
        if sc.exists():
            cells = pq.read_table(sc, filters=[("Metadata_Plate", "=", plate), ("Metadata_Well", "=", well)]).to_pandas()
        else:
            cells = pd.DataFrame()
        c = counts[(counts.Metadata_Plate == plate) & (counts.Metadata_Well == well)]
        med_parts.append(aggregate_cells(cells.drop(columns=["Metadata_Site"], errors="ignore"), by, "median", c))
        mean_parts.append(aggregate_cells(cells.drop(columns=["Metadata_Site"], errors="ignore"), by, "mean", c))
    write_table(pd.concat(med_parts, ignore_index=True), out_dir / "well.parquet",
                {**provenance, "table": "well", "aggregation": "median"})
    write_table(pd.concat(mean_parts, ignore_index=True), out_dir / "well_mean.parquet",
                {**provenance, "table": "well", "aggregation": "mean"})


def intensity_scale(cfg: ClassicalConfig, dtypes_seen: set[str]) -> dict:
    """How raw intensities were scaled to [0, 1] (the manifest's and the tables' ``intensity_scale``)."""
    return {"bit_depth": cfg.bit_depth, "file_dtypes": sorted(dtypes_seen),
            "rule": "raw / (2**bit_depth - 1)" if cfg.bit_depth != "auto" else "raw / max of file dtype"}


def dtype_note(dtypes_seen: set[str]) -> str | None:
    """A note when the images came in several dtypes (each scaled by its own range), else None."""
    if len(dtypes_seen) > 1:
        return (f"images of several dtypes ({', '.join(sorted(dtypes_seen))}) were each scaled by their own "
                "dtype's range; give --bit-depth to scale all alike")
    return None


def finish_tables(out: Path, cfg: ClassicalConfig, dtypes_seen: set[str]) -> dict:
    """Stamp the single-cell and site tables with their provenance and write the well tables.

    Returns
    -------
    dict
        The provenance (feature set, groups, segmentation, intensity scale).
    """
    provenance = {"feature_set": "classical", "groups": cfg.groups, "segmentation": cfg.segmentation,
                  "intensity_scale": intensity_scale(cfg, dtypes_seen)}
    stamp_provenance(out / "single_cell.parquet", {**provenance, "table": "single_cell"})
    stamp_provenance(out / "site.parquet", {**provenance, "table": "site", "aggregation": "median"})
    stamp_provenance(out / "site_mean.parquet", {**provenance, "table": "site", "aggregation": "mean"})
    aggregate_wells(out, provenance)
    return provenance
