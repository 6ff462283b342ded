"""How ``extract deep`` runs: the resume check, the local engine's loop over the resumable writer, and the end of
the run (errors and manifest through :func:`~stratonet.runtime.runfinish.finish_run`).

The plan (model, preprocessing, per-batch compute) is :mod:`stratonet.extract.deep.run`; the Ray Data engine is
:mod:`stratonet.runtime.raydata`. Both engines go through :func:`prepare_deep`, so they write the same provenance and
signature and resume each other's checks.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader

from stratonet.core.errors import StratoNetError
from stratonet.core.progress import get_logger, track_units
from stratonet.core.runinfo import ResourceMonitor, device_info, package_versions
from stratonet.core.tables import PROVENANCE_KEY, SITE_KEYS, read_table
from stratonet.extract.deep.config import DeepConfig
from stratonet.extract.deep.dataset import ParallelDecode, SiteDataset, collate_sites
from stratonet.extract.deep.inference import Embedder, resolve_device, try_compile_warmup
from stratonet.extract.deep.run import (CELL_KEYS, DeepPlan, attach_scaling, cells_counts, cells_path, check_options,
                                        embed_batch, embedder_options, manifest_path, plan_deep, requested_signature,
                                        run_counts, site_columns, sites_per_model_batch)
from stratonet.images.scaling import mixed_dtype_plates, note_dtypes, resolve_scaling, warn_mixed_dtypes
from stratonet.index.schema import site_name, validate_index
from stratonet.models.precision import default_batch_size, default_threads_workers
from stratonet.runtime.resumable import SIGNATURE_KEY as RESUME_KEY, ErrorLog, PartitionedWriter, check_resume_settings
from stratonet.runtime.runfinish import errors_path, finish_run, require_parquet_output, require_rows
from stratonet.runtime.runguard import fault_point, guarded_output, interrupted, worker_init
from stratonet.runtime.runsignature import canonical
from stratonet.runtime.spec import RunSpec, split_options
from stratonet.runtime.writer import WideTableWriter


def deep_configs(options: dict) -> tuple[DeepConfig, RunSpec]:
    """``(DeepConfig, RunSpec)`` from the flat option names of ``stratonet extract deep`` (the keyword form)."""
    deep, run = split_options(options)
    return DeepConfig.from_options(**deep), run


def _discard(out: Path) -> None:
    """``--overwrite``: remove the table, the per-cell table and their parts."""
    for table in (out, cells_path(out)):
        PartitionedWriter(table).discard()


def prepare_deep(index, out: Path, cfg: DeepConfig, run: RunSpec, device, batch_size: int,
                 on_start: Callable[[], object] | None = None, source: str | None = None) -> DeepPlan:
    """Validate the input, build the model, resolve scaling, and check (or record) the resume signature.

    Shared by the local engine (:func:`extract_deep`) and the Ray Data engine (:mod:`stratonet.runtime.raydata`).
    ``device`` is a resolved :class:`torch.device` (the Ray engine names the actors' device, which the driver may
    lack); ``index`` a path or a DataFrame (read once; ``source`` names it in messages).
    """
    out = require_parquet_output(out, "deep features")
    check_options(cfg, batch_size)
    source = source or ("index" if isinstance(index, pd.DataFrame) else str(index))
    df = index if isinstance(index, pd.DataFrame) else read_table(index)
    validate_index(df, source)
    require_rows(df, source)
    chans, key_cols = site_columns(df, source, cfg)
    if run.threads is not None:
        torch.set_num_threads(int(run.threads))
    plan = plan_deep(df, cfg, chans, key_cols, device, batch_size)
    if run.overwrite:
        _discard(out)
    # every setting known so far, before resolve_scaling may re-estimate and rewrite <stem>.scaling.json
    check_resume_settings(out, requested_signature(plan))
    scale = resolve_scaling(cfg.scaling, plan.rows, chans, out, log=get_logger(), on_error=cfg.on_error)
    attach_scaling(plan, scale)
    existing = PartitionedWriter(out, key_columns=key_cols)
    existing.check_signature(plan.signature)
    existing.check_metadata(df)  # rows already written keep their metadata: refuse rather than mix (issue 26)
    if on_start is not None:
        on_start()  # the CLI writes its run configuration only now: a refused resume leaves the old one
    plan.stamp = {PROVENANCE_KEY.encode(): json.dumps(plan.provenance, default=str).encode(),
                  RESUME_KEY: json.dumps(canonical(plan.signature), sort_keys=True).encode()}  # a finished table knows
    plan.cell_stamp = {PROVENANCE_KEY.encode(): json.dumps({**plan.provenance, "level": "cell"}, default=str).encode()}
    return plan


@guarded_output("out")  # one run per output; SIGTERM handled like Ctrl-C
def extract_deep(index, out, cfg: DeepConfig | None = None, run: RunSpec | None = None,
                 on_start: Callable[[], object] | None = None, source: str | None = None, **options) -> dict:
    """Extract channel-specific deep features for every site of an index (the local engine).

    Parameters
    ----------
    index : path or DataFrame
        The image index (see :mod:`stratonet.index.schema`), read once.
    out : path
        Feature table (.parquet). ``cells`` mode also writes ``<stem>_cells.parquet``; a manifest
        ``<stem>.manifest.json`` and, with ``on_error="skip"``, ``<stem>.errors.csv`` lie beside it.
    cfg : DeepConfig
        What to compute: model, input, scaling, batch size, device, on_error (see
        :mod:`stratonet.extract.deep.config`).
    run : RunSpec
        How: worker processes, threads, decode thread, rows per part, flush seconds, overwrite, progress.
    on_start : callable, optional
        Called once the output is known to be resumable (or new), before anything is written: the CLI writes its
        run configuration there, so that a refused resume leaves the existing run's files untouched.
    source : str, optional
        How messages name ``index`` when it is a DataFrame (the CLI passes the path it read).
    **options
        Instead of ``cfg`` and ``run``: their flat option names (``channels=``, ``model=``, ``weights=``,
        ``mode=``, ``scaling=``, ``workers=``, ``overwrite=`` ...; see :meth:`DeepConfig.from_options` and
        :class:`~stratonet.runtime.spec.RunSpec`).

    Returns
    -------
    dict
        The manifest (also written to ``<stem>.manifest.json``).
    """
    if options:
        cfg, run = deep_configs(options)
    cfg, run = cfg or DeepConfig(), run or RunSpec()
    out = Path(out)
    dev = resolve_device(cfg.device)
    batch_size = default_batch_size(dev) if cfg.batch_size is None else cfg.batch_size
    default_threads, n_workers = default_threads_workers(cfg.model.precision, dev, workers=run.workers)
    threaded = replace(run, threads=int(run.threads or default_threads))
    plan = prepare_deep(index, out, cfg, threaded, dev, batch_size, on_start=on_start, source=source)
    return _run_local(plan, out, run, n_workers)


class _Writers:
    """The site table's resumable writer and, in cells mode, the per-cell table's (its rows reach disk first)."""

    def __init__(self, plan: DeepPlan, out: Path, run: RunSpec):
        self.site = WideTableWriter(out, key_columns=plan.key_cols, rows_per_part=run.rows_per_part,
                                    metadata=plan.stamp, seconds_per_part=run.flush_seconds)
        self.cell = WideTableWriter(cells_path(out), key_columns=CELL_KEYS, rows_per_part=run.rows_per_part * 64,
                                    metadata=plan.cell_stamp) if plan.mode == "cells" else None
        self.done = self.site.done_keys()
        if self.cell is not None:
            _drop_unfinished_cells(self.cell, {k[:3] for k in self.done})

    def write(self, site_df: pd.DataFrame, cell_df: pd.DataFrame | None) -> None:
        if cell_df is not None:
            self.cell.write(cell_df)
            self.cell.flush()  # per-cell rows reach disk before their site row
            self.cell.wait()
            fault_point("deep.between_flushes")
        self.site.write(site_df)

    def finalize(self) -> None:
        if self.site.has_output():
            self.site.finalize()  # parts carry the provenance and the signature, so the final file does too
            if self.cell is not None:
                self.cell.finalize()


def _drop_unfinished_cells(writer: PartitionedWriter, done_sites: set[tuple]) -> None:
    """Remove per-cell rows of sites whose site row was never written (a run stopped between the two flushes)."""
    for part in writer._part_files():
        table = pq.read_table(part)
        keys = table.select(SITE_KEYS).to_pandas().astype(str).itertuples(index=False, name=None)
        keep = [tuple(k) in done_sites for k in keys]
        if not all(keep):
            tmp = part.with_suffix(".tmp")
            pq.write_table(table.filter(pa.array(keep)), tmp)  # keeps the schema metadata (provenance)
            tmp.replace(part)


def _batches(plan: DeepPlan, todo: list[dict], run: RunSpec, n_workers: int):
    """``(batches, decode)``: the model batches of the sites to do, decoded by worker processes (a DataLoader) or
    in this process (:class:`ParallelDecode`, returned as ``decode`` to be closed and described)."""
    sites_per_batch = sites_per_model_batch(plan.batch_size, plan.mode, len(plan.chans))
    dataset = SiteDataset(todo, plan.prep, plan.centers())
    if n_workers:
        return DataLoader(
            dataset, batch_size=sites_per_batch, shuffle=False, num_workers=n_workers,
            collate_fn=collate_sites, pin_memory=plan.dev.type == "cuda", worker_init_fn=_worker_init,
            prefetch_factor=4, persistent_workers=False,
        ), None
    # decode in this process on as many threads as the model uses: in line, ahead, or chosen by load
    ahead = True if (run.decode_thread is None and plan.dev.type == "cuda") else run.decode_thread  # a GPU never waits
    decode = ParallelDecode(dataset, sites_per_batch, threads=torch.get_num_threads(), ahead=ahead)
    return decode, decode


def _run_local(plan: DeepPlan, out: Path, run: RunSpec, n_workers: int) -> dict:
    """The local engine: decode, embed and write every site not yet done, then finish the run."""
    log = get_logger()
    writers = _Writers(plan, out, run)
    todo = [r for r in plan.rows if tuple(str(r[k]) for k in plan.key_cols) not in writers.done]
    embedder = Embedder(plan.net, plan.dev, **embedder_options(plan))
    embedder = try_compile_warmup(embedder, plan.native or plan.size)
    batches, decode = _batches(plan, todo, run, n_workers)
    errors = ErrorLog(errors_path(out))
    counts = {"sites": 0, "units": 0, "dtypes": {}}
    t_start = time.perf_counter()
    with ResourceMonitor() as monitor:
        try:
            for batch in track_units(batches, f"deep features ({plan.net.model_name}, {plan.mode}): sites",
                                     total=len(todo), units_of=lambda b: len(b["i"]) + len(b["errors"]),
                                     disable=not run.progress):
                _take_batch(plan, embedder, batch, todo, writers, counts)
                for i, msg in batch["errors"].items():
                    if plan.cfg.on_error == "fail":
                        raise StratoNetError(msg)
                    errors.add(site_name(todo[i]), "extract deep", msg, **{k: todo[i][k] for k in plan.key_cols})
                    log.warning(msg)
        except Exception:
            if interrupted():  # a worker stopped by the same signal: report the interruption, not the worker
                raise KeyboardInterrupt from None
            raise
        finally:  # on success, error, Ctrl-C or SIGTERM: every finished site reaches disk; a rerun resumes
            if decode is not None:
                decode.close()
            writers.site.flush()
            writers.site.wait()
    wall = time.perf_counter() - t_start
    writers.finalize()
    manifest = _local_manifest(plan, out, run, n_workers, embedder, decode) | {
        **run_counts(len(plan.rows), len(plan.rows) - len(todo), counts["sites"], len(plan.chans), counts["units"],
                     wall),
        "resources": monitor.summary(), "features": len(plan.names),
        "mixed_dtype_plates": mixed_dtype_plates(counts["dtypes"])}
    if plan.mode == "cells":  # the unit of work is the crop: report crops, not site images
        manifest.update(cells_counts(counts["units"], counts["sites"], len(plan.chans), wall))
    warn_mixed_dtypes(manifest["mixed_dtype_plates"])
    finish_run(errors, manifest, manifest_path(out), wrote_rows=out.exists())
    log.info("deep features: %d sites, %.1f channel-images/s -> %s", counts["sites"],
             manifest["channel_images_per_s"], out)
    return manifest


def _take_batch(plan: DeepPlan, embedder, batch: dict, todo: list[dict], writers: _Writers, counts: dict) -> None:
    """Embed one batch's decoded sites and write their rows."""
    if not batch["i"]:
        return
    site_df, cell_df = embed_batch(embedder, batch, todo, plan)
    writers.write(site_df, cell_df)
    for i, file_dtypes in zip(batch["i"], batch.get("dtypes", [])):
        note_dtypes(counts["dtypes"], todo[i], file_dtypes)
    counts["sites"] += len(batch["i"])
    counts["units"] += int(sum(batch["counts"]))
    fault_point("deep.batch_done")


def _local_manifest(plan: DeepPlan, out: Path, run: RunSpec, n_workers: int, embedder, decode) -> dict:
    """The local engine's manifest up to the counts (configuration, model card, versions, device)."""
    m = plan.cfg.model
    return {
        "output": str(out),
        "cells_output": str(cells_path(out)) if plan.mode == "cells" else None,
        "provenance": plan.provenance,
        "config": dict(plan.signature) | {
            "batch_size": plan.batch_size, "workers": n_workers,
            "decode_thread": "auto" if run.decode_thread is None else bool(run.decode_thread),
            "decode": decode.describe() if decode is not None else f"{n_workers} worker process(es)",
            "device": str(plan.dev), "compile": embedder.compiled, "fuse_bn": m.fuse_bn,
            "threads": torch.get_num_threads(), "rows_per_part": run.rows_per_part, "precision": m.precision},
        "precision": plan.prec.as_dict(),
        "model_card": plan.card,
        "packages": package_versions(),
        "device": device_info(str(plan.dev)),
        "threads": torch.get_num_threads(),
        "workers": n_workers,
    }


def _worker_init(_: int) -> None:
    worker_init()  # die with the main process; leave Ctrl-C to it
    torch.set_num_threads(1)  # decode/resize workers must not compete with the model's threads
