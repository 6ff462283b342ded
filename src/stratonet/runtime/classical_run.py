"""How a classical run executes: every site of an index, in worker processes, resumable, locked, with a manifest.

The stage (:mod:`stratonet.extract.classical.run`) says what one site gives (:func:`process_site`) and how the
tables are finished; this module drives it over an index: the resumable writers (one commit record, the site
median table), the output lock, SIGTERM as Ctrl-C, the process pool with its watchdog, the error table and the
manifest (:func:`stratonet.runtime.runfinish.finish_run`). Outputs are listed in the stage's docstring.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import pandas as pd

from stratonet.core.errors import SiteError, StratoNetError
from stratonet.core.tables import SITE_KEYS
from stratonet.extract.classical.run import (
    TABLES, ClassicalConfig, check_dna, dtype_note, finish_tables, intensity_scale, process_site, resume_signature,
    unique_rows,
)

# Modules a worker needs, imported once in the fork server so that each worker starts fast and no worker is forked
# from a process whose other threads may hold an import lock (the cause of random hangs with ``fork``).
WORKER_PRELOAD = ["stratonet.runtime.runguard", "stratonet.runtime.classical_run", "stratonet.extract.classical.run",
                  "stratonet.extract.classical.measure", "stratonet.extract.classical.segment",
                  "stratonet.extract.classical.aggregate", "stratonet.images.io", "tifffile", "skimage.measure"]


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


def check_resume(index: pd.DataFrame, out_dir: str | Path, cfg: ClassicalConfig) -> None:
    """Refuse early (before anything is written) when ``out_dir`` holds output of another configuration."""
    from stratonet.index.schema import channels_of
    from stratonet.runtime.resumable import PartitionedWriter, row_key_columns

    site_table = Path(out_dir) / "site.parquet"
    writer = PartitionedWriter(site_table, key_columns=row_key_columns(index))
    if writer.has_output():
        writer.check_signature(resume_signature(cfg, channels_of(index), row_key_columns(index)))


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
        run = ClassicalRun(index, out_dir, cfg or ClassicalConfig(), on_error=on_error, on_empty=on_empty,
                           flush_every=flush_every, flush_seconds=flush_seconds, overwrite=overwrite)
        return run.execute(workers, progress, stall_timeout)


class ClassicalRun:
    """One classical run over an index: its writers, error table and tallies.

    Built by :func:`extract_classical`: the constructor validates the index, opens the writers (refusing a resume
    with other settings) and lists the sites still to do; :meth:`execute` processes them and writes the manifest.
    """

    def __init__(self, index: pd.DataFrame, out_dir: str | Path, cfg: ClassicalConfig, *, on_error: str,
                 on_empty: str, flush_every: int, flush_seconds: float, overwrite: bool):
        from stratonet.core.progress import get_logger
        from stratonet.index.schema import channels_of, validate_index
        from stratonet.runtime.resumable import ErrorLog, row_key_columns
        from stratonet.runtime.runfinish import errors_path, require_rows

        self.cfg, self.on_error, self.on_empty = cfg, on_error, on_empty
        self.flush_every, self.flush_seconds = flush_every, flush_seconds
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        validate_index(index)
        require_rows(index, "index")
        self.channels = channels_of(index)
        self.log = get_logger()
        self.keys = row_key_columns(index)
        index, self.n_repeated = unique_rows(index, self.keys, self.log)
        self._open_writers(index, overwrite)
        self.errors = ErrorLog(errors_path(self.out))
        self.notes: set[str] = set()
        self.dtypes_seen: set[str] = set()
        self.cpu_total, self.n_done, self.n_cells = 0.0, 0, 0
        self.empty_sites: list[str] = []
        self.nonfinite: dict[str, int] = {}
        self.last_flush = time.monotonic()

    def _open_writers(self, index: pd.DataFrame, overwrite: bool) -> None:
        """The three resumable tables (median first: it is the commit record), the sites done and those to do."""
        from stratonet.runtime.resumable import PartitionedWriter

        out, keys = self.out, self.keys
        files = {"cells": out / "single_cell.parquet", "mean": out / "site_mean.parquet",
                 "median": out / "site.parquet"}
        if overwrite:
            for f in files.values():
                PartitionedWriter(f).discard()
        signature = resume_signature(self.cfg, self.channels, keys)
        self.writers = {  # the median table is checked first: it is the commit record
            k: PartitionedWriter(files[k], key_columns=keys + (["ObjectNumber"] if k == "cells" else []),
                                 rows_per_part=10**9, signature=signature)
            for k in ("median", "mean", "cells")
        }
        self.writers["median"].check_metadata(index, columns_too=False)  # refuse rather than mix annotations (issue 26)
        self.done = self.writers["median"].done_keys()
        # rows of sites never committed
        self.n_uncommitted = sum(self.writers[k].retain(self.done, keys) for k in ("cells", "mean"))
        if self.n_uncommitted:
            self.log.warning("dropped %d row(s) of sites whose run stopped before they were committed; they are "
                             "redone", self.n_uncommitted)
        self.rows = [r for r in index.to_dict("records") if tuple(str(r[k]) for k in keys) not in self.done]

    def flush_all(self) -> None:
        """Flush the three tables, the commit record (the site median table) last."""
        from stratonet.runtime.runguard import fault_point

        self.writers["cells"].flush()
        fault_point("classical.between_flushes")
        self.writers["mean"].flush()
        self.writers["median"].flush()  # the commit: a site counts as done once its median row is on disk
        self.last_flush = time.monotonic()

    def handle(self, res: dict) -> None:
        """Take one site's result: write its rows, or record (or raise) its error."""
        from stratonet.runtime.runguard import fault_point

        if "error" not in res and res.get("n_objects", 1) == 0:
            self.empty_sites.append(res["site"])
            self.log.warning("%s: 0 objects found", res["site"])
            if self.on_empty == "error":
                res = {"error": f"site {res['site']}: 0 objects found (--on-empty error)", "site": res["site"],
                       "row": {k: res["median"][k].iloc[0] for k in SITE_KEYS}}
        for col, n in res.get("nonfinite", {}).items():
            self.nonfinite[col] = self.nonfinite.get(col, 0) + n
        if "error" in res:
            if self.on_error == "fail":
                raise SiteError(res["site"], res["error"].split(": ", 1)[-1]) if not res["error"].startswith("site ") \
                    else StratoNetError(res["error"])
            self.errors.add(res["site"], "extract classical", res["error"],
                            **{k: res["row"][k] for k in self.keys if k in res["row"]})
            self.log.warning("skipped %s", res["error"])
            return
        for k in TABLES:
            self.writers[k].write(res[k])
        self.cpu_total += res["cpu_s"]
        self.n_done += 1
        self.n_cells += len(res["cells"])
        self.notes.update(res["notes"])
        self.dtypes_seen.update(res.get("dtypes", []))
        fault_point("classical.site_done")
        if self.n_done % self.flush_every == 0 or time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush_all()

    def _rows_with_dna(self) -> list[dict]:
        """The rows to do, less those without a DNA image (failed, or listed as errors, before any work starts)."""
        from stratonet.index.schema import site_name

        for r in self.rows:
            try:
                check_dna(r, self.cfg, self.channels)
            except SiteError as exc:
                if self.on_error == "fail":
                    raise
                self.errors.add(exc.site, "extract classical", str(exc), **{k: r[k] for k in self.keys})
        bad = {e["site"] for e in self.errors.rows}
        return [r for r in self.rows if site_name(r) not in bad]

    def execute(self, workers: int, progress: bool, stall_timeout: float | None) -> dict:
        """Process the sites still to do, finish the tables and write the manifest; return the manifest."""
        from stratonet.core.progress import track
        from stratonet.core.runinfo import ResourceMonitor
        from stratonet.index.schema import site_name
        from stratonet.runtime.runguard import fault_point

        rows = self._rows_with_dna()
        with ResourceMonitor() as mon:
            try:
                if workers <= 1:
                    for r in track(rows, "classical features", total=len(rows), disable=not progress):
                        try:
                            res = process_site(r, self.channels, self.cfg, str(self.out))
                        except StratoNetError as exc:
                            res = {"error": str(exc), "site": site_name(r), "row": r}
                        self.handle(res)  # outside the try: a full disk while writing is not a bad site
                else:
                    _run_pool(rows, self.channels, self.cfg, self.out, workers, self.handle, progress, stall_timeout)
            finally:
                self.flush_all()
        for k in TABLES:  # the commit record last: a kill in between leaves parts that the next run merges
            self.writers[k].finalize()
            fault_point(f"classical.finalized_{k}")
        note = dtype_note(self.dtypes_seen)
        if note:
            self.notes.add(note)
        finish_tables(self.out, self.cfg, self.dtypes_seen)
        return self._finish(mon.summary(), workers)

    def _finish(self, summ: dict, workers: int) -> dict:
        """Write the error table and the manifest (:func:`finish_run`), log the run's warnings, return the manifest."""
        from stratonet.core.runinfo import device_info, package_versions
        from stratonet.runtime.runfinish import errors_path, finish_run

        out, n_done, errors = self.out, self.n_done, self.errors
        manifest = {
            "feature_set": "classical",
            "config": self.cfg.to_dict(),
            "channels": self.channels,
            "notes": sorted(self.notes),
            "intensity_scale": intensity_scale(self.cfg, self.dtypes_seen),
            "n_sites": n_done,
            "n_sites_skipped_as_done": len(self.done),
            "key_columns": self.keys,
            "n_index_rows_repeated": self.n_repeated,
            "n_uncommitted_rows_dropped": self.n_uncommitted,
            "n_cells": self.n_cells,
            "n_errors": len(errors),
            "n_sites_total": n_done + len(self.done),
            "n_sites_empty": len(self.empty_sites),
            "empty_sites": sorted(self.empty_sites)[:100],
            "n_nonfinite_values": sum(self.nonfinite.values()),
            "nonfinite_values": dict(sorted(self.nonfinite.items())),
            "errors_table": str(errors_path(out)) if len(errors) else None,
            "workers": workers,
            "core_s_total": self.cpu_total,
            "core_s_per_site": self.cpu_total / n_done if n_done else float("nan"),
            "sites_per_s": n_done / summ["wall_s"] if summ["wall_s"] > 0 else float("nan"),
            **summ,
            "packages": package_versions(["mahotas", "numba", "centrosome"]),
            "device": device_info(),
        }
        finish_run(errors, manifest, out / "site.manifest.json", wrote_rows=(out / "site.parquet").exists())
        for n in sorted(self.notes):
            self.log.warning(n)
        if self.empty_sites:
            self.log.warning("%d site(s) with 0 objects: %s", len(self.empty_sites),
                             ", ".join(sorted(self.empty_sites)[:10]))
        if self.nonfinite:
            self.log.warning("%d infinite value(s) set to NaN in %d column(s): %s", sum(self.nonfinite.values()),
                             len(self.nonfinite), ", ".join(sorted(self.nonfinite)[:10]))
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
