"""Classical (CellProfiler-style) features for every site of an index, in parallel, resumable.

Outputs in ``out_dir``:

- ``single_cell.parquet``: one row per cell: ``Metadata_*``, ``ObjectNumber``, parent links, ``Location_*``,
  ``Nuclei_*`` / ``Cells_*`` / ``Cytoplasm_*`` features;
- ``site.parquet`` (median per site) and ``site_mean.parquet`` (mean per site), with ``Count_Nuclei`` and
  ``Count_Cells``;
- ``well.parquet`` (median of the well's cells) and ``well_mean.parquet``;
- ``site.manifest.json``: configuration, versions, device, wall time, core-seconds per site, CPU % / memory %;
- ``masks/<plate>_<well>_<site>_{Nuclei,Cells}.tiff`` with ``save_masks``; ``errors.csv`` with ``on_error="skip"``.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
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


def _worker(args):
    row, channels, cfg, out_dir = args
    import os

    from stratonet.runtime.runguard import fault_point

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    fault_point("classical.worker")
    try:
        return process_site(row, channels, cfg, out_dir)
    except StratoNetError as exc:
        return {"error": str(exc), "site": f"{row['Metadata_Plate']}/{row['Metadata_Well']}/{row['Metadata_Site']}",
                "row": row}


def _check_dna(row: dict, cfg: ClassicalConfig, channels: list[str]) -> None:
    from stratonet.index.schema import site_name

    v = row.get(f"Path_{cfg.dna_channel}")
    stack = row.get("Path_Stack")
    if cfg.dna_channel in channels and (isinstance(v, str) and v or isinstance(stack, str) and stack):
        return
    have = [c for c in channels if isinstance(row.get(f"Path_{c}"), str) and row.get(f"Path_{c}")]
    raise SiteError(site_name(row), f"no {cfg.dna_channel} channel, needed to find nuclei (channels: {have or channels})")


# Modules a worker needs, imported once in the fork server so that each worker starts fast and no worker is forked
# from a process whose other threads may hold an import lock (the cause of random hangs with ``fork``).
WORKER_PRELOAD = ["stratonet.runtime.runguard", "stratonet.extract.classical.run", "stratonet.extract.classical.measure",
                  "stratonet.extract.classical.segment", "stratonet.extract.classical.aggregate", "stratonet.images.io", "tifffile",
                  "skimage.measure"]
TABLES = ("cells", "mean", "median")  # flushed in this order: a site is committed once its median row is on disk


def resume_signature(cfg: ClassicalConfig, channels: list[str], key_columns: list[str]) -> dict:
    """What shapes the rows of a classical output; a resume with another signature is refused."""
    sig = cfg.to_dict()
    sig.pop("save_masks", None)  # masks are a side output, not part of the tables
    return {**sig, "channels": list(channels), "key_columns": list(key_columns)}


def check_resume(index: pd.DataFrame, out_dir: str | Path, cfg: ClassicalConfig) -> None:
    """Refuse early (before anything is written) when ``out_dir`` holds output of another configuration."""
    from stratonet.index.schema import channels_of
    from stratonet.runtime.resumable import PartitionedWriter, row_key_columns

    site_table = Path(out_dir) / "site.parquet"
    writer = PartitionedWriter(site_table, key_columns=row_key_columns(index))
    if writer.has_output():
        writer.check_signature(resume_signature(cfg, channels_of(index), row_key_columns(index)))


def _unique_rows(index: pd.DataFrame, keys: list[str], log) -> tuple[pd.DataFrame, int]:
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


def _stop_pool(pool) -> None:
    """Kill the pool's workers at once (a hung or interrupted run must not wait for them) and shut it down."""
    for proc in list(getattr(pool, "_processes", {}).values()):  # no public API for this
        try:
            proc.kill()
        except Exception:
            pass
    pool.shutdown(wait=False, cancel_futures=True)
    # Let the pool's manager thread finish closing its wakeup pipe now: if the interpreter exits while it is still
    # closing, concurrent.futures' exit hook can write to the closed pipe and print an OSError traceback after our
    # one-line error (seen once in CI after a killed worker).
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(timeout=10)


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


def extract_classical(
    index: pd.DataFrame,
    out_dir: str | Path,
    cfg: ClassicalConfig | None = None,
    workers: int = 1,
    on_error: str = "fail",
    flush_every: int = 8,
    progress: bool = True,
    on_empty: str = "warn",
    overwrite: bool = False,
    flush_seconds: float = 60.0,
    stall_timeout: float | None = None,
) -> dict:
    """Run the classical path over every site of an index.

    Parameters
    ----------
    index : DataFrame
        Index rows (see :mod:`stratonet.index.schema`).
    out_dir : path
    cfg : ClassicalConfig, optional
    workers : int
        Parallel processes; at most ``2 * workers`` sites are in flight, which bounds memory.
    on_error : {"fail", "skip"}
    flush_every : int
        Sites buffered before the tables are flushed to disk (a rerun resumes after the last flush).
    on_empty : {"warn", "error"}
        A site where no cell is found: ``warn`` writes it (counts 0, features NaN) with a warning;
        ``error`` makes it a site error, which ``on_error`` then fails on or skips. Either way the manifest
        counts and lists such sites.
    overwrite : bool
        Discard existing output instead of resuming (a resume with another configuration is refused).
    flush_seconds : float
        Also flush when the oldest buffered site is this old, so a kill loses at most this much work.
    stall_timeout : float, optional
        With ``workers > 1``: fail cleanly when no worker finishes a site for this long (default
        ``$STRATONET_STALL_TIMEOUT`` or 1800 s).

    Returns
    -------
    dict: the manifest written to ``site.manifest.json``.

    Notes
    -----
    Rows are keyed on the index's full row identity (:func:`stratonet.runtime.resumable.row_key_columns`), the output is
    locked against a second run (:class:`stratonet.runtime.runguard.OutputLock`), and SIGTERM is handled like Ctrl-C.
    """
    from stratonet.runtime.runguard import OutputLock, interrupt_on_sigterm

    with OutputLock(out_dir), interrupt_on_sigterm():
        return _extract_classical(index, out_dir, cfg, workers, on_error, flush_every, progress, overwrite,
                                  flush_seconds, stall_timeout, on_empty)


def _extract_classical(index, out_dir, cfg, workers, on_error, flush_every, progress, overwrite, flush_seconds,
                       stall_timeout, on_empty) -> dict:
    from stratonet.index.schema import channels_of, validate_index
    from stratonet.core.progress import get_logger, track
    from stratonet.runtime.resumable import ErrorLog, PartitionedWriter, row_key_columns
    from stratonet.runtime.runguard import fault_point
    from stratonet.runtime.runfinish import errors_path, finish_run, require_rows
    from stratonet.core.runinfo import ResourceMonitor, device_info, package_versions

    cfg = cfg or ClassicalConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    validate_index(index)
    require_rows(index, "index")
    channels = channels_of(index)
    log = get_logger()
    keys = row_key_columns(index)
    index, n_repeated = _unique_rows(index, keys, log)
    files = {"cells": out / "single_cell.parquet", "mean": out / "site_mean.parquet", "median": out / "site.parquet"}
    if overwrite:
        for f in files.values():
            PartitionedWriter(f).discard()
    signature = resume_signature(cfg, channels, keys)
    writers = {  # the median table is checked first: it is the commit record
        k: PartitionedWriter(files[k], key_columns=keys + (["ObjectNumber"] if k == "cells" else []),
                             rows_per_part=10**9, signature=signature)
        for k in ("median", "mean", "cells")
    }
    writers["median"].check_metadata(index, columns_too=False)  # refuse rather than mix annotations (issue 26)
    done = writers["median"].done_keys()
    n_uncommitted = sum(writers[k].retain(done, keys) for k in ("cells", "mean"))  # rows of sites never committed
    if n_uncommitted:
        log.warning("dropped %d row(s) of sites whose run stopped before they were committed; they are redone",
                    n_uncommitted)
    rows = [r for r in index.to_dict("records") if tuple(str(r[k]) for k in keys) not in done]
    errors = ErrorLog(errors_path(out))
    notes: set[str] = set()
    dtypes_seen: set[str] = set()
    cpu_total, n_done, n_cells = 0.0, 0, 0
    empty_sites: list[str] = []
    nonfinite: dict[str, int] = {}
    last_flush = time.monotonic()

    def flush_all() -> None:
        nonlocal last_flush
        writers["cells"].flush()
        fault_point("classical.between_flushes")
        writers["mean"].flush()
        writers["median"].flush()  # the commit: a site counts as done once its median row is on disk
        last_flush = time.monotonic()

    def handle(res: dict) -> None:
        nonlocal cpu_total, n_done, n_cells
        if "error" not in res and res.get("n_objects", 1) == 0:
            empty_sites.append(res["site"])
            log.warning("%s: 0 objects found", res["site"])
            if on_empty == "error":
                res = {"error": f"site {res['site']}: 0 objects found (--on-empty error)", "site": res["site"],
                       "row": {k: res["median"][k].iloc[0] for k in SITE_KEYS}}
        for col, n in res.get("nonfinite", {}).items():
            nonfinite[col] = nonfinite.get(col, 0) + n
        if "error" in res:
            if on_error == "fail":
                raise SiteError(res["site"], res["error"].split(": ", 1)[-1]) if not res["error"].startswith("site ") \
                    else StratoNetError(res["error"])
            errors.add(res["site"], "extract classical", res["error"],
                       **{k: res["row"][k] for k in keys if k in res["row"]})
            log.warning("skipped %s", res["error"])
            return
        for k in TABLES:
            writers[k].write(res[k])
        cpu_total += res["cpu_s"]
        n_done += 1
        n_cells += len(res["cells"])
        notes.update(res["notes"])
        dtypes_seen.update(res.get("dtypes", []))
        fault_point("classical.site_done")
        if n_done % flush_every == 0 or time.monotonic() - last_flush >= flush_seconds:
            flush_all()

    for r in rows:  # a site without DNA fails before any work starts
        try:
            _check_dna(r, cfg, channels)
        except SiteError as exc:
            if on_error == "fail":
                raise
            errors.add(exc.site, "extract classical", str(exc), **{k: r[k] for k in keys})
    bad = {e["site"] for e in errors.rows}
    from stratonet.index.schema import site_name

    rows = [r for r in rows if site_name(r) not in bad]
    with ResourceMonitor() as mon:
        try:
            if workers <= 1:
                for r in track(rows, "classical features", total=len(rows), disable=not progress):
                    try:
                        res = process_site(r, channels, cfg, str(out))
                    except StratoNetError as exc:
                        res = {"error": str(exc), "site": site_name(r), "row": r}
                    handle(res)  # outside the try: a full disk while writing is not a bad site
            else:
                _run_pool(rows, channels, cfg, out, workers, handle, progress, stall_timeout)
        finally:
            flush_all()
    for k in TABLES:  # the commit record last: a kill in between leaves parts that the next run merges
        writers[k].finalize()
        fault_point(f"classical.finalized_{k}")
    if len(dtypes_seen) > 1:
        notes.add(f"images of several dtypes ({', '.join(sorted(dtypes_seen))}) were each scaled by their own "
                  "dtype's range; give --bit-depth to scale all alike")
    intensity_scale = {"bit_depth": cfg.bit_depth, "file_dtypes": sorted(dtypes_seen),
                       "rule": "raw / (2**bit_depth - 1)" if cfg.bit_depth != "auto" else "raw / max of file dtype"}
    provenance = {"feature_set": "classical", "groups": cfg.groups, "segmentation": cfg.segmentation,
                  "intensity_scale": intensity_scale}
    stamp_provenance(out / "single_cell.parquet", {**provenance, "table": "single_cell"})
    stamp_provenance(out / "site.parquet", {**provenance, "table": "site", "aggregation": "median"})
    stamp_provenance(out / "site_mean.parquet", {**provenance, "table": "site", "aggregation": "mean"})
    aggregate_wells(out, provenance)
    summ = mon.summary()
    manifest = {
        "feature_set": "classical",
        "config": cfg.to_dict(),
        "channels": channels,
        "notes": sorted(notes),
        "intensity_scale": intensity_scale,
        "n_sites": n_done,
        "n_sites_skipped_as_done": len(done),
        "key_columns": keys,
        "n_index_rows_repeated": n_repeated,
        "n_uncommitted_rows_dropped": n_uncommitted,
        "n_cells": n_cells,
        "n_errors": len(errors),
        "n_sites_total": n_done + len(done),
        "n_sites_empty": len(empty_sites),
        "empty_sites": sorted(empty_sites)[:100],
        "n_nonfinite_values": sum(nonfinite.values()),
        "nonfinite_values": dict(sorted(nonfinite.items())),
        "errors_table": str(errors_path(out)) if len(errors) else None,
        "workers": workers,
        "core_s_total": cpu_total,
        "core_s_per_site": cpu_total / n_done if n_done else float("nan"),
        "sites_per_s": n_done / summ["wall_s"] if summ["wall_s"] > 0 else float("nan"),
        **summ,
        "packages": package_versions(["mahotas", "numba", "centrosome"]),
        "device": device_info(),
    }
    finish_run(errors, manifest, out / "site.manifest.json", wrote_rows=(out / "site.parquet").exists())
    for n in sorted(notes):
        log.warning(n)
    if empty_sites:
        log.warning("%d site(s) with 0 objects: %s", len(empty_sites), ", ".join(sorted(empty_sites)[:10]))
    if nonfinite:
        log.warning("%d infinite value(s) set to NaN in %d column(s): %s", sum(nonfinite.values()),
                    len(nonfinite), ", ".join(sorted(nonfinite)[:10]))
    return manifest


def _run_pool(rows: list[dict], channels: list[str], cfg: ClassicalConfig, out: Path, workers: int, handle,
              progress: bool, stall_timeout: float | None) -> None:
    """Process rows in worker processes (fork server), at most ``2 * workers`` in flight, with a watchdog.

    Workers are forked from a single-threaded fork server that has imported :data:`WORKER_PRELOAD`, and die with
    their parent. When no site finishes for ``stall_timeout`` seconds, or a worker dies, the workers are stopped
    and a one-line error names the sites in flight.
    """
    import multiprocessing as mp
    import os
    from concurrent.futures.process import BrokenProcessPool

    from stratonet.index.schema import site_name
    from stratonet.core.progress import track
    from stratonet.runtime.runguard import POOL_PARENT_ENV, own_mp_tempdir, worker_init

    own_mp_tempdir()  # a pid-named folder for the fork server's socket: a killed run's is removed by the next
    stall = float(stall_timeout or os.environ.get("STRATONET_STALL_TIMEOUT") or 1800)
    if "forkserver" in mp.get_all_start_methods():
        from multiprocessing import forkserver

        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(WORKER_PRELOAD)
        os.environ[POOL_PARENT_ENV] = str(os.getpid())  # the fork server dies with this process (see runguard)
        try:
            forkserver.ensure_running()
        finally:
            os.environ.pop(POOL_PARENT_ENV, None)
    else:
        ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=worker_init)
    pending: dict = {}
    bar = track(range(len(rows)), "classical features", total=len(rows), disable=not progress)
    next(bar, None)  # show the bar now, not when the first site is done
    resume_hint = "what was written is kept and a rerun resumes"

    def drain(limit: int) -> None:
        while len(pending) > limit:
            finished, _ = wait(list(pending), timeout=stall, return_when=FIRST_COMPLETED)
            if not finished:
                busy = ", ".join(sorted(pending.values())[:4])
                raise StratoNetError(f"no worker finished a site in {stall:.0f} s (in flight: {busy}); workers "
                                     f"stopped; {resume_hint} (--stall-timeout sets the limit)")
            for f in finished:
                site = pending.pop(f)
                try:
                    res = f.result()
                except BrokenProcessPool:
                    raise StratoNetError(f"a worker process died while processing {site} (killed, or out of "
                                         f"memory?); {resume_hint}") from None
                handle(res)
                next(bar, None)

    ok = False
    try:
        for r in rows:
            pending[pool.submit(_worker, (r, channels, cfg, str(out)))] = site_name(r)
            drain(2 * workers - 1)
        drain(0)
        for _ in bar:
            pass
        ok = True
    finally:
        if ok:
            pool.shutdown(wait=True)
        else:
            _stop_pool(pool)
