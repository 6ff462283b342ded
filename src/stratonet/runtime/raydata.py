"""``extract deep --engine ray``: a Ray Data streaming pipeline (units of sites -> model actor pool -> Parquet parts).

The index is cut into *units of work*: contiguous runs of sites in index order, each a whole number of the local
engine's model batches (:func:`~stratonet.extract.deep.run.sites_per_model_batch` sites), so that every forward pass sees
exactly the images a local run's would and the features are the same bit for bit (on CPU). Where a unit is decoded
(read, illumination-correct, scale with the plate percentiles the driver estimated once on the whole index, resize,
all with the local engine's :class:`~stratonet.extract.deep.dataset.SiteDataset`) depends on the cluster
(``decode="auto"``):

- **CPU actors** (``decode="actor"``, the default without GPUs): each model actor holds a whole node and decodes its
  units itself with the local engine's :class:`~stratonet.extract.deep.dataset.ParallelDecode`, on the model's threads.
  Only the index rows of a unit travel through Ray; decoded pixels never enter the object store, and decoding never
  competes with the model for the node's cores, as in a local run.
- **GPU actors** (``decode="tasks"``, the default with GPUs): a unit is decoded by a **decode task**
  (``Dataset.map``, 1 CPU, one thread) and the decoded sites go through the object store to a GPU actor, so that the
  node's CPUs decode while the GPUs run the model.

The **model actors** (``Dataset.map_batches`` with ``ActorPoolStrategy``) build the model and load its weights once
each, embed a unit in the local engine's batches, write its rows as one Parquet part,
``<out>.parts/part-<unit>.parquet``, atomically (temporary file, then rename), and return only a small summary.
A lone CPU actor works through units of the local engine's part size (``rows_per_part`` sites), so that a Ray run
writes and merges as many parts as a local one; several actors get two units each, for balance. While a unit runs,
its actor writes how many of its sites are done to ``<out>.parts/.progress/unit-<k>`` (at most every 0.5 s), and
the driver's progress bar counts sites from those and from the finished units' summaries.

Ray Data's streaming executor gives backpressure: decode tasks stop when the decoded units waiting for the actors
fill their share of the object store, so memory is bounded by the unit size (at most ~64 MB decoded) times the
units in flight, not by the screen (with decoding in the actors, only index rows are queued). ``STRATONET_RAY_OBJECT_STORE_LIMIT`` (bytes) caps the pipeline's object store use
further (``DataContext.execution_options.resource_limits``).

Resume and retries: a unit is done when its part holds all its sites (or the final table already has them); a rerun
runs only the others, with the unit size recorded in ``<out>.parts/ray_units.json``. A decode task or model actor that
dies is retried by Ray (actors are restarted); a retried unit rewrites the same part with the same rows, so no row
is lost or written twice. At the end the parts are merged in unit order (= index order) into ``out`` with the
resume signature and provenance of the local engine.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stratonet.core.errors import ConfigError, StratoNetError

#: Decoded bytes per unit of work, at most (whole sites at 224 px, 5 channels: ~64 sites).
UNIT_BYTES = 64 << 20
#: At least this many units per model actor when decode tasks feed it, so that decoding of one unit overlaps the
#: model on another.
UNITS_PER_ACTOR = 8
#: ... and when the actors decode their own units (with more than one actor): enough for balance and retries; every
#: unit costs a Parquet part write, a restart of the decode pipeline (measured: 8 units of 24 sites 0.69x as fast as
#: 2 of 96) and its share of the final merge (~0.5 s to read back a part of 15,000 columns).
UNITS_PER_DECODING_ACTOR = 2
PLAN_FILE = "ray_units.json"
#: Where the actors say how many sites of each unit they have done (``<out>.parts/.progress/unit-<k>``), at most
#: every ``PROGRESS_EVERY_S`` seconds: the driver's progress bar counts sites, not whole units.
PROGRESS_DIR = ".progress"
PROGRESS_EVERY_S = 0.5
#: Retries of a decode task whose worker died (an application error is reported, not retried).
DECODE_RETRIES = 4
OBJECT_STORE_ENV = "STRATONET_RAY_OBJECT_STORE_LIMIT"


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ConfigError("--engine ray needs Ray (with Ray Data): install stratonet[ray], "
                          "i.e. pip install 'stratonet[ray]'") from exc
    _quiet_ray_data_console()
    return ray


def _quiet_ray_data_console() -> None:
    """Keep Ray Data's INFO lines ("Starting execution of Dataset ...") off the terminal, where they break the
    progress bar; its warnings still show, and everything stays in Ray's own ``ray-data.log``. Its progress module
    only warns that its bars are off, which this module does on purpose (the run has its own bar)."""
    import logging

    for handler in logging.getLogger("ray.data").handlers:
        if handler.name == "console":
            handler.setLevel(max(handler.level, logging.WARNING))
    progress_log = logging.getLogger("ray.data._internal.progress")
    progress_log.setLevel(max(progress_log.level, logging.ERROR))


def unit_sites(n_sites: int, spb: int, bytes_per_site: int, rows_per_part: int, n_actors: int,
               decode_in_actor: bool = False) -> int:
    """Sites per unit: a multiple of the model batch ``spb``, about ``rows_per_part`` rows at most (the local
    engine's part: whole batches, rounded up), and small enough for ``UNITS_PER_ACTOR`` units per actor. A unit that
    travels decoded (decode tasks) is also at most ``UNIT_BYTES`` decoded; one decoded by its actor streams through
    it batch by batch, so only ``UNITS_PER_DECODING_ACTOR`` units per actor are needed (one for a lone actor:
    nothing to balance, so it writes the local engine's parts) and the memory bound does not apply. The units are
    then evened out, so that the last one is not a runt."""
    k_mem = max(1, UNIT_BYTES // max(1, spb * bytes_per_site)) if not decode_in_actor else math.inf
    k_rows = max(1, math.ceil(rows_per_part / spb))
    if decode_in_actor:
        per_actor = 1 if n_actors <= 1 else UNITS_PER_DECODING_ACTOR
    else:
        per_actor = UNITS_PER_ACTOR
    k_par = max(1, math.ceil(n_sites / (spb * per_actor * max(1, n_actors))))
    k = min(k_mem, k_rows, k_par)
    n_units = max(1, math.ceil(n_sites / (spb * k)))
    return spb * max(1, math.ceil(n_sites / (spb * n_units)))


def actor_resources(nodes: list[dict], device: str, actors: int | None,
                    decode_in_actor: bool = False) -> tuple[int, float, float, str]:
    """``(actors, cpus per actor, gpus per actor, device)``: one GPU actor per GPU when the cluster has GPUs (and
    ``device`` is not ``cpu``), else one CPU actor per node: holding the whole node when it decodes its own units
    (``decode_in_actor``), else the cores a local run gives the model, leaving the rest to decode tasks."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    if not alive:
        raise StratoNetError("the Ray cluster has no live node")
    total_cpu = sum(r.get("CPU", 0.0) for r in alive)
    gpus = sum(r.get("GPU", 0.0) for r in alive)
    if device == "cuda" and gpus < 1:
        raise ConfigError("--device cuda was asked for, but the Ray cluster has no GPU (use --device cpu or auto)")
    if gpus >= 1 and device != "cpu":
        return int(actors or gpus), 1.0, 1.0, "cuda"
    node_cpus = min(r.get("CPU", 1.0) for r in alive)
    n = int(actors or len(alive))
    if decode_in_actor:
        per_node = -(-n // len(alive))
        return n, max(0.5, node_cpus / per_node), 0.0, "cpu"
    cpus = max(1.0, node_cpus - max(1, int(node_cpus) // 4))  # as default_threads_workers: the rest decode
    if total_cpu - n * cpus < 1:  # leave decode tasks at least one CPU, or the pipeline cannot start
        cpus = max(0.5, (total_cpu - 1) / n) if total_cpu > 1 else 0.5
    return n, cpus, 0.0, "cpu"


def actor_threads(nodes: list[dict], n_actors: int, device: str) -> int:
    """Intra-op threads of a CPU model actor: every core of its node's share, as the local engine gives the model
    every core with decoding beside it (the actor reserves fewer CPUs so that decode tasks can be scheduled)."""
    if device != "cpu":
        return 1
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    per_node = max(1, -(-int(n_actors) // max(1, len(alive))))
    return max(1, int(min(r.get("CPU", 1.0) for r in alive)) // per_node)


def decode_placement(decode: str, device: str) -> str:
    """``"actor"`` (model actors decode their own units) or ``"tasks"`` (separate decode tasks) for ``decode``
    ``auto|actor|tasks`` on actors of ``device``: auto decodes in the actors on CPU and in tasks beside GPUs."""
    if decode not in ("auto", "actor", "tasks"):
        raise ConfigError(f"decode must be auto, actor or tasks, not {decode!r}")
    if decode == "auto":
        return "actor" if device == "cpu" else "tasks"
    return decode


def _part(parts_dir: Path, unit: int, width: int) -> Path:
    return parts_dir / f"part-{unit:0{width}d}.parquet"


def decode_unit(row: dict, prep, centers) -> dict:
    """Ray Data ``map``: one unit's index rows -> its decoded sites (the local engine's items, pickled)."""
    import torch

    from stratonet.extract.deep.dataset import SiteDataset

    torch.set_num_threads(1)  # as the local engine's decode workers
    rows = pickle.loads(row["rows"])
    data = SiteDataset(rows, prep, centers)
    items = [data[i] for i in range(len(rows))]
    return {"unit": row["unit"], "rows": row["rows"], "payload": pickle.dumps(items, protocol=5)}


class UnitProgress:
    """Sites done in a Ray run, for the driver's progress bar: whole units from the actors' summaries, plus the
    counts the actors write for the units they are working on (a file per unit, see :meth:`report`).

    Without a shared filesystem the driver sees no files and the bar moves by whole units."""

    def __init__(self, directory: Path):
        import threading

        self.directory = Path(directory)
        self._done: dict[int, int] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> "UnitProgress":
        self.clear()  # counts left by an interrupted run would be stale
        return self

    def __exit__(self, *exc) -> None:
        self.clear()  # the parts folder is removed after the merge only when it is empty

    def clear(self) -> None:
        """Remove the counts."""
        import shutil

        shutil.rmtree(self.directory, ignore_errors=True)

    def unit_done(self, unit: int, sites: int) -> None:
        with self._lock:
            self._done[int(unit)] = int(sites)
        (self.directory / f"unit-{int(unit)}").unlink(missing_ok=True)

    def sites(self) -> int:
        """Sites of finished units plus those the actors reported for unfinished ones."""
        with self._lock:
            done = dict(self._done)
        partial = 0
        for path in self.directory.glob("unit-*"):
            unit = path.name.removeprefix("unit-")
            if unit.isdigit() and int(unit) not in done:  # not a report being written (unit-<k>.<pid>.tmp)
                try:
                    partial += int(path.read_text() or 0)
                except (OSError, ValueError):  # removed or being replaced just now
                    pass
        return sum(done.values()) + partial

    @staticmethod
    def report(directory: Path, unit: int, sites: int) -> None:
        """Write ``sites`` as unit ``unit``'s count (atomic: temporary file, then rename); never fails the unit."""
        path = Path(directory) / f"unit-{int(unit)}"
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(str(int(sites)))
            tmp.replace(path)
        except OSError:
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True, kw_only=True)
class UnitJob:
    """What every model actor needs besides the model: threads, the model batch in sites (``spb``), the mode, the
    table's metadata and feature columns, where and how parts are written (``parts_dir``, ``cell_parts_dir``,
    ``width`` of the unit number, Parquet ``stamp`` and ``cell_stamp``), ``on_error``, and, for actors that decode
    their own units, ``decode`` (the local engine's ``prep``, ``centers`` and ``ahead``) and ``progress_dir``."""

    threads: int
    spb: int
    mode: str
    meta_cols: list
    names: list
    on_error: str
    parts_dir: str
    cell_parts_dir: str | None = None
    width: int
    stamp: dict
    cell_stamp: dict
    decode: dict | None = None
    progress_dir: str | None = None


class DeepActor:
    """Ray Data actor: the model built once; each call embeds whole units and writes one Parquet part per unit.

    A unit arrives decoded (``payload``, from :func:`decode_unit`) or as index rows only, which the actor decodes
    itself with :class:`~stratonet.extract.deep.dataset.ParallelDecode` on its model threads (``decode`` given: the
    local engine's ``prep``, ``centers`` and ``ahead``)."""

    def __init__(self, model, embed: dict, job: "UnitJob"):
        import torch

        from stratonet.extract.deep.inference import Embedder, try_compile_warmup
        from stratonet.extract.deep.run import build_model

        torch.set_num_threads(int(job.threads))
        net = build_model(model.model, model.weights, model.seed, model.taps)[0]
        embed = dict(embed)
        device = torch.device(embed.pop("device"))
        size = embed.pop("size")
        self.embedder = try_compile_warmup(Embedder(net, device, **embed), size)
        self.spb, self.mode, self.meta_cols, self.names = job.spb, job.mode, job.meta_cols, job.names
        self.parts_dir = Path(job.parts_dir)
        self.cell_parts_dir = Path(job.cell_parts_dir) if job.cell_parts_dir else None
        self.width, self.stamp, self.cell_stamp, self.on_error = job.width, job.stamp, job.cell_stamp, job.on_error
        self.decode, self.threads = job.decode, int(job.threads)
        self.groups = [0, 0]  # the current unit's groups decoded ahead / in line
        self.progress_dir = Path(job.progress_dir) if job.progress_dir else None

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        from stratonet.extract.deep.dataset import pin_torch_threads

        # Ray Data calls the actor on a thread of its own, whose OpenMP thread count is not the one set in
        # __init__ (the model ran on one core): set and pin it on the calling thread.
        pin_torch_threads(self.threads)

        out = {"unit": [], "sites": [], "model_units": [], "errors": [], "decode": [], "seconds": []}
        payloads = batch["payload"] if "payload" in batch else [None] * len(batch["unit"])
        for unit, rows_b, payload in zip(batch["unit"], batch["rows"], payloads):
            rows = pickle.loads(rows_b)
            self.groups = [0, 0]
            t0 = time.perf_counter()
            sites, units, errors = self._unit(int(unit), rows, self._batches(rows, payload))
            out["unit"].append(int(unit))
            out["sites"].append(sites)
            out["model_units"].append(units)
            out["errors"].append(json.dumps(errors))
            out["decode"].append(json.dumps(self.groups))
            out["seconds"].append(time.perf_counter() - t0)
        return {k: np.asarray(v) for k, v in out.items()}

    def _batches(self, rows: list[dict], payload: bytes | None):
        """The unit's model batches, in the local engine's grouping: same sites per forward pass."""
        from stratonet.extract.deep.dataset import ParallelDecode, SiteDataset, collate_sites

        if payload is not None:  # decoded by a decode task
            items = pickle.loads(payload)
            for a in range(0, len(items), self.spb):
                yield collate_sites(items[a: a + self.spb])
            return
        dataset = SiteDataset(rows, self.decode["prep"], self.decode["centers"])
        decode = ParallelDecode(dataset, self.spb, threads=self.threads, ahead=self.decode["ahead"])
        try:
            yield from decode
        finally:
            decode.close()
            self.groups = [decode.groups_ahead, decode.groups_in_line]

    def _unit(self, unit: int, rows: list[dict], batches) -> tuple[int, int, list]:
        from stratonet.extract.deep.run import batch_tables
        from stratonet.runtime.writer import _write_part
        from stratonet.index.schema import site_name
        from stratonet.runtime.runguard import fault_point

        site_dfs, cell_dfs, errors, n_units = [], [], [], 0
        seen, reported = 0, -math.inf  # the first batch is reported at once, then every PROGRESS_EVERY_S
        for b in batches:
            if b["i"]:
                feats = self.embedder(b["x"])
                site_df, cell_df = batch_tables(b, feats, rows, self.meta_cols, self.names, self.mode)
                site_dfs.append(site_df)
                if cell_df is not None:
                    cell_dfs.append(cell_df)
                n_units += int(sum(b["counts"]))
            errors += [[site_name(rows[i]), msg] for i, msg in b["errors"].items()]
            seen += len(b["i"]) + len(b["errors"])
            if self.progress_dir is not None and time.monotonic() - reported >= PROGRESS_EVERY_S:
                UnitProgress.report(self.progress_dir, unit, seen)
                reported = time.monotonic()
        if errors and self.on_error == "fail":
            return 0, 0, errors  # the driver stops the run; nothing of this unit is written
        if site_dfs:
            if cell_dfs:  # per-cell rows reach disk before the site rows that mark the unit done
                self.cell_parts_dir.mkdir(parents=True, exist_ok=True)
                _write_part(pd.concat(cell_dfs, ignore_index=True), _part(self.cell_parts_dir, unit, self.width),
                            self.cell_stamp)
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            _write_part(pd.concat(site_dfs, ignore_index=True), _part(self.parts_dir, unit, self.width), self.stamp)
        fault_point("deep.ray_unit_written")  # tests kill the actor here: its retry rewrites the same part
        return sum(len(d) for d in site_dfs), n_units, errors


def _done_units(units: list[list[dict]], key_cols: list[str], parts_dir: Path, width: int, out: Path) -> set[int]:
    """Units whose part holds all their sites, or whose sites are all in an existing final table."""
    import pyarrow.parquet as pq

    from stratonet.runtime.resumable import key_tuples

    final: set[tuple] = set()
    if out.exists():
        final = set(key_tuples(pq.read_table(out, columns=key_cols).to_pandas(), key_cols))
    done = set()
    for k, rows in enumerate(units):
        part = _part(parts_dir, k, width)
        if part.exists() and pq.ParquetFile(part).metadata.num_rows == len(rows):
            done.add(k)
        elif final and all(tuple(str(r[c]) for c in key_cols) in final for r in rows):
            done.add(k)
    return done


def _unit_plan(parts_dir: Path, n_sites: int, default: int) -> int:
    """The unit size of an unfinished Ray run (so its parts stay valid), else ``default`` (recorded)."""
    plan = parts_dir / PLAN_FILE
    if plan.exists():
        rec = json.loads(plan.read_text())
        if rec.get("sites") == n_sites:
            return int(rec["unit_sites"])
        raise ConfigError(f"{parts_dir} holds parts of a Ray run over {rec.get('sites')} sites, not {n_sites}; "
                          "use --overwrite or another --out")
    if parts_dir.exists() and any(parts_dir.glob("part-*.parquet")):
        raise ConfigError(f"{parts_dir} holds parts of an unfinished local run; finish it with --engine local, or "
                          "use --overwrite")
    parts_dir.mkdir(parents=True, exist_ok=True)
    plan.write_text(json.dumps({"unit_sites": default, "sites": n_sites}))
    return default


def _unit_summaries(ds):
    """The actors' per-unit summaries as they arrive. ``iter_rows`` prefetches a block ahead, which holds every
    result back until the next unit is done (with two units per actor, the progress bar moved only at the end)."""
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
        for i in range(len(batch["unit"])):
            yield {k: v[i] for k, v in batch.items()}


def _take_summary(summary: dict, on_error: str, errors, log) -> None:
    """Record the failed sites of a unit's summary in ``errors``; the first one stops the run under
    ``on_error="fail"``."""
    errs = json.loads(summary["errors"])
    if errs and on_error == "fail":
        raise StratoNetError(errs[0][1])
    for site, msg in errs:
        errors.add(site, "extract deep", msg)
        log.warning(msg)


def _guarded(fn):
    from stratonet.runtime.runguard import guarded_output

    return guarded_output("out")(fn)  # one run per output; SIGTERM handled like Ctrl-C


@_guarded
def extract_deep_ray(index, out, cfg=None, run=None, **options) -> dict:
    """:func:`~stratonet.runtime.deep_run.extract_deep` as a Ray Data streaming pipeline (see the module docstring).

    Parameters
    ----------
    index : DataFrame or path
        The image index, read once.
    out : path
        The feature table.
    cfg : DeepConfig
        What to compute, as for the local engine.
    run : RunSpec
        How: ``run.ray`` gives ``address`` (``ray://host:10001``, ``auto``; default ``$RAY_ADDRESS``, else a local
        cluster started and stopped here), ``actors`` (model actors; default one per GPU, or one per node on CPU),
        ``unit_size`` (sites per unit of work, rounded up to whole model batches) and ``decode``
        (``auto|actor|tasks``: where units are decoded, see the module docstring); ``decode_thread`` is the local
        engine's choice of in line / ahead for actors that decode. ``workers`` and ``flush_seconds`` of the local
        engine have no meaning here (decode tasks and units replace them).
    **options
        Instead of ``cfg`` and ``run``: their flat option names, as for ``extract_deep`` (``unit_size``,
        ``actors``, ``address`` and ``decode`` go to ``run.ray``).
    """
    from dataclasses import replace

    from stratonet.extract.deep.config import DeepConfig
    from stratonet.runtime.deep_run import deep_configs
    from stratonet.runtime.scaleout import ray_session
    from stratonet.runtime.spec import RaySpec, RunSpec

    if options:
        ray_opts = {k: options.pop(k) for k in ("address", "actors", "unit_size", "decode") if k in options}
        cfg, run = deep_configs(options)
        run = replace(run, ray=RaySpec(**ray_opts))
    cfg, run = cfg or DeepConfig(), run or RunSpec()
    ray = import_ray()
    with ray_session(run.ray.address):
        placement = _placement(ray, cfg, run)
        plan = _prepare(index, out, cfg, run, placement)
        layout = _layout(plan, Path(out), run, placement)
        stats = _execute(ray, plan, run, placement, layout)
    _merge(plan, Path(out), layout)
    return _finish(plan, Path(out), run, placement, layout, stats)


def _placement(ray, cfg, run) -> dict:
    """Where the model runs: ``where`` units are decoded (actor | tasks), the actors, their resources and device."""
    gpu_cluster = any(n.get("Resources", {}).get("GPU", 0) >= 1 for n in ray.nodes() if n.get("Alive", True))
    where = decode_placement(run.ray.decode, "cuda" if gpu_cluster and cfg.device != "cpu" else "cpu")
    n_actors, actor_cpus, actor_gpus, dev_name = actor_resources(ray.nodes(), cfg.device, run.ray.actors,
                                                                 where == "actor")
    threads = int(run.threads or actor_threads(ray.nodes(), n_actors, dev_name))
    return {"where": where, "actors": n_actors, "cpus": actor_cpus, "gpus": actor_gpus, "device": dev_name,
            "threads": threads}


def _prepare(index, out, cfg, run, placement: dict):
    """The local engine's plan, for the actors' device and its default batch size (so the batches match)."""
    import torch
    from dataclasses import replace

    from stratonet.models.precision import default_batch_size
    from stratonet.runtime.deep_run import prepare_deep

    dev = torch.device(placement["device"])
    batch_size = default_batch_size(dev) if cfg.batch_size is None else cfg.batch_size
    # the driver's own threads are not set here (threads belong to the actors)
    return prepare_deep(index, Path(out), cfg, replace(run, threads=None), dev, batch_size)


def _layout(plan, out: Path, run, placement: dict) -> dict:
    """The units of work (resumed from an unfinished run's plan), which of them are done, and where parts go."""
    from stratonet.extract.deep.run import UNITS_PER_SITE, cells_path, sites_per_model_batch

    rows, mode = plan.rows, plan.mode
    pixels = plan.native[0] * plan.native[1] if plan.native else plan.size ** 2
    spb = sites_per_model_batch(plan.batch_size, mode, len(plan.chans))
    parts_dir = out.with_name(out.name + ".parts")
    cell_parts = cells_path(out).with_name(cells_path(out).name + ".parts")
    if run.overwrite:
        for d in (parts_dir, cell_parts):
            (d / PLAN_FILE).unlink(missing_ok=True)
    default = unit_sites(len(rows), spb, UNITS_PER_SITE[mode] * len(plan.chans) * pixels * 4, run.rows_per_part,
                         placement["actors"], decode_in_actor=placement["where"] == "actor")
    if run.ray.unit_size:
        default = spb * max(1, math.ceil(run.ray.unit_size / spb))
    per_unit = _unit_plan(parts_dir, len(rows), default)
    units = [rows[a: a + per_unit] for a in range(0, len(rows), per_unit)]
    width = max(5, len(str(len(units) - 1)))
    done = _done_units(units, plan.key_cols, parts_dir, width, out)
    return {"out": out, "spb": spb, "parts_dir": parts_dir, "cell_parts": cell_parts if mode == "cells" else None,
            "per_unit": per_unit, "units": units, "width": width, "done": done,
            "todo": [k for k in range(len(units)) if k not in done]}


def _object_store_limit(ray) -> str | None:
    """Configure Ray Data's context for this run; the object store limit from the environment, if any."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.execution_options.preserve_order = False  # parts are named by unit; order is restored at the merge
    limit = os.environ.get(OBJECT_STORE_ENV)
    if limit:
        from ray.data import ExecutionResources

        ctx.execution_options.resource_limits = ExecutionResources(object_store_memory=float(limit))
    return limit


def _dataset(ray, plan, run, placement: dict, layout: dict, progress_dir: Path):
    """The pipeline: one block per unit -> (decode tasks) -> the model actor pool, which writes the parts."""
    units, todo, where = layout["units"], layout["todo"], placement["where"]
    center_map = plan.centers()
    items = [{"unit": k, "rows": pickle.dumps(units[k], protocol=5)} for k in todo]
    ds = ray.data.from_items(items, override_num_blocks=len(items))  # one block per unit
    if where == "tasks":
        # Explicit task retries also keep Ray Data from fusing the decode into the model actors (their remote args
        # differ): decoding runs as separate CPU tasks, overlapping the model.
        ds = ds.map(decode_unit, fn_kwargs={"prep": plan.prep, "centers": center_map}, num_cpus=1,
                    max_retries=DECODE_RETRIES)
    from stratonet.extract.deep.run import embedder_options

    embed = {"device": placement["device"], "size": plan.native or plan.size, **embedder_options(plan)}
    cell_parts = layout["cell_parts"]
    job = UnitJob(threads=placement["threads"], spb=layout["spb"], mode=plan.mode, meta_cols=plan.meta_cols,
                  names=plan.names, parts_dir=str(layout["parts_dir"]),
                  cell_parts_dir=str(cell_parts) if cell_parts else None, width=layout["width"], stamp=plan.stamp,
                  cell_stamp=plan.cell_stamp, on_error=plan.cfg.on_error,
                  decode={"prep": plan.prep, "centers": center_map, "ahead": run.decode_thread}
                  if where == "actor" else None,
                  progress_dir=str(progress_dir) if run.progress else None)
    return ds.map_batches(
        DeepActor, batch_size=1, batch_format="numpy", num_cpus=placement["cpus"], num_gpus=placement["gpus"],
        compute=ray.data.ActorPoolStrategy(size=placement["actors"], max_tasks_in_flight_per_actor=2),
        fn_constructor_kwargs=dict(model=plan.cfg.model, embed=embed, job=job))


def _execute(ray, plan, run, placement: dict, layout: dict) -> dict:
    """Run the units not yet done and drain the actors' summaries (errors, counts, progress)."""
    from stratonet.core.progress import get_logger, polled_progress
    from stratonet.core.runinfo import ResourceMonitor
    from stratonet.core.wording import plural
    from stratonet.runtime.resumable import ErrorLog
    from stratonet.runtime.runfinish import errors_path

    log = get_logger()
    units, todo = layout["units"], layout["todo"]
    limit = _object_store_limit(ray)
    stats = {"errors": ErrorLog(errors_path(layout["out"])), "sites": 0, "units": 0, "groups": [0, 0],
             "busy": 0.0, "limit": limit}  # busy: seconds the actors spent on units (the rest: start-up, scheduling)
    t_start, cpu_start = time.perf_counter(), time.process_time()
    with ResourceMonitor() as monitor, UnitProgress(layout["parts_dir"] / PROGRESS_DIR) as counts:
        if todo:
            ds = _dataset(ray, plan, run, placement, layout, counts.directory)
            log.info("ray data plan: %s", ds)
            total = sum(len(units[k]) for k in todo)
            with polled_progress(f"ray data: sites in {plural(len(todo), 'unit')}", total, counts.sites,
                                 disable=not run.progress) as show:
                for r in _unit_summaries(ds):
                    _take_summary(r, plan.cfg.on_error, stats["errors"], log)
                    counts.unit_done(int(r["unit"]), len(units[int(r["unit"])]))
                    show()
                    stats["sites"] += int(r["sites"])
                    stats["units"] += int(r["model_units"])
                    stats["groups"] = [a + b for a, b in zip(stats["groups"], json.loads(r["decode"]))]
                    stats["busy"] += float(r["seconds"])
    stats.update(wall=time.perf_counter() - t_start, driver_cpu=time.process_time() - cpu_start,
                 resources=monitor.summary())
    return stats


def _merge(plan, out: Path, layout: dict) -> None:
    """Merge the parts in unit order (= index order) into ``out`` (and the per-cell table)."""
    from stratonet.extract.deep.run import CELL_KEYS, cells_path
    from stratonet.runtime.writer import WideTableWriter

    writer = WideTableWriter(out, key_columns=plan.key_cols, metadata=plan.stamp)
    if writer.has_output():
        (layout["parts_dir"] / PLAN_FILE).unlink(missing_ok=True)
        writer.finalize()  # parts in unit order = index order; keys written twice (never expected) are dropped
        if layout["cell_parts"] is not None:
            WideTableWriter(cells_path(out), key_columns=CELL_KEYS, metadata=plan.cell_stamp).finalize()


def _finish(plan, out: Path, run, placement: dict, layout: dict, stats: dict) -> dict:
    """The manifest (the local engine's fields plus ``engine``), written with the errors by ``finish_run``."""
    from stratonet.core.progress import get_logger
    from stratonet.core.runinfo import device_info, package_versions
    from stratonet.extract.deep.run import cells_path, manifest_path, run_counts
    from stratonet.runtime.runfinish import finish_run

    m, where, threads, groups = plan.cfg.model, placement["where"], placement["threads"], stats["groups"]
    units, done, limit, dev_name = layout["units"], layout["done"], stats["limit"], placement["device"]
    manifest = {
        "output": str(out),
        "cells_output": str(cells_path(out)) if plan.mode == "cells" else None,
        "provenance": plan.provenance,
        "config": dict(plan.signature) | {"batch_size": plan.batch_size, "device": dev_name, "compile": m.compile,
                                          "fuse_bn": m.fuse_bn, "threads": threads,
                                          "rows_per_part": run.rows_per_part, "precision": m.precision,
                                          "engine": "ray-data",
                                          "decode_thread": "auto" if run.decode_thread is None
                                          else bool(run.decode_thread),
                                          "decode": (f"in the model actors on {threads} thread(s): ahead "
                                                     f"{groups[0]}, in line {groups[1]}" if where == "actor" else
                                                     "decode tasks, 1 CPU each")},
        "engine": {"name": "ray-data", "actors": placement["actors"], "cpus_per_actor": placement["cpus"],
                   "gpus_per_actor": placement["gpus"], "decode": where,
                   "actor_busy_s": round(stats["busy"], 3), "driver_cpu_s": round(stats["driver_cpu"], 3),
                   "decode_groups": {"ahead": groups[0], "in_line": groups[1]} if where == "actor" else None,
                   "decode_cpus_per_task": 1 if where == "tasks" else None, "sites_per_unit": layout["per_unit"],
                   "sites_per_model_batch": layout["spb"], "units": len(units), "units_resumed": len(done),
                   "object_store_limit": float(limit) if limit else None},
        "precision": plan.prec.as_dict(),
        "model_card": plan.card,
        "packages": package_versions(),
        "device": device_info("cpu") if dev_name == "cpu" else {"device": dev_name, "where": "ray actors"},
        "threads": threads,
        "workers": None,
        **run_counts(len(plan.rows), sum(len(units[k]) for k in done), stats["sites"], len(plan.chans),
                     stats["units"], stats["wall"]),
        "resources": stats["resources"],
        "features": len(plan.names),
    }
    finish_run(stats["errors"], manifest, manifest_path(out), wrote_rows=out.exists())
    get_logger().info("deep features (ray data): %d sites, %.1f channel-images/s -> %s", stats["sites"],
                      manifest["channel_images_per_s"], out)
    return manifest
