"""Fault injection on small synthetic plates: kills, signals, concurrent runs, changed inputs (issues 15 and 10.1).

Faults are injected with ``STRATONET_FAULT=<point>[@n][:action]`` (see :func:`stratonet.runtime.runguard.fault_point`) in a
subprocess, or with real signals. Every interrupted run is resumed and compared, table by table, with an
uninterrupted run: same rows, no duplicate keys, identical content checksums.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from conftest import ROOT, run_cli

SITE = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
CLASSICAL_TABLES = {"single_cell.parquet": SITE + ["ObjectNumber"], "site.parquet": SITE,
                    "site_mean.parquet": SITE, "well.parquet": SITE[:2]}
FAST_CLASSICAL = ["--features", "areashape"]


# -- helpers ---------------------------------------------------------------------------------------------------
def _env(fault: str | None = None, **extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "STRATONET_FAULT": fault or "", "OMP_NUM_THREADS": "1"}
    env.update(extra)
    return env


def stratonet(args: list, fault: str | None = None, timeout: float = 180, **extra: str) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess (so that a kill -9 hits it, not pytest)."""
    return subprocess.run([sys.executable, "-m", "stratonet", *map(str, args)], env=_env(fault, **extra),
                          capture_output=True, text=True, timeout=timeout, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """In the child: Ctrl-C as a terminal delivers it. A process started by one that ignores SIGINT (a pytest-xdist
    worker may) inherits the ignore, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(args: list, fault: str | None = None, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stratonet", *map(str, args)], env=_env(fault, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_default_sigint)


def digest(path: Path, keys: list[str]) -> str:
    """Content checksum of a table, independent of row and column order."""
    df = pd.read_parquet(path)
    df = df[sorted(df.columns)].sort_values(keys, kind="stable").reset_index(drop=True)
    return hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()).hexdigest()


def assert_same_tables(out: Path, ref: Path, tables: dict[str, list[str]]) -> None:
    for name, keys in tables.items():
        got, want = pd.read_parquet(out / name), pd.read_parquet(ref / name)
        assert not got.duplicated(subset=keys).any(), f"{name}: duplicate keys"
        assert len(got) == len(want), f"{name}: {len(got)} rows, uninterrupted run {len(want)}"
        assert digest(out / name, keys) == digest(ref / name, keys), f"{name}: content differs"
    assert not list(out.glob("*.parts")), "parts left behind"


def wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def assert_all_gone(procs: list[psutil.Process], timeout: float = 20) -> None:
    gone, alive = psutil.wait_procs(procs, timeout=timeout)
    assert not alive, f"processes survived their parent: {[p.pid for p in alive]}"


# -- fixtures --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    """6 sites (3 wells x 2) of a 128-px synthetic plate, its index and an uninterrupted classical run."""
    base = tmp_path_factory.mktemp("faults")
    assert run_cli(["synth", base / "plate", "--wells", 3, "--sites", 2, "--size", 128, "--seed", 3]) == 0
    idx = base / "index.parquet"
    assert run_cli(["index", next((base / "plate").rglob("load_data.csv")), "-o", idx]) == 0
    ref = base / "classical_ref"
    assert run_cli(["extract", "classical", idx, "-o", ref, *FAST_CLASSICAL]) == 0
    return {"base": base, "index": idx, "classical_ref": ref}


# -- classical: kills at chosen moments, then resume -----------------------------------------------------------
@pytest.mark.parametrize("fault", [
    "classical.site_done@3",  # nothing flushed yet
    "classical.between_flushes",  # single cells on disk, their site rows not (the 777-duplicates defect)
    "finalize.merged",  # merged file written, its parts not yet removed
])
def test_classical_kill_and_resume_is_row_exact(plate, tmp_path, fault):
    out = tmp_path / "classical"
    killed = stratonet(["extract", "classical", plate["index"], "-o", out, *FAST_CLASSICAL], fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert run_cli(["extract", "classical", plate["index"], "-o", out, *FAST_CLASSICAL]) == 0
    assert_same_tables(out, plate["classical_ref"], CLASSICAL_TABLES)
    man = json.loads((out / "site.manifest.json").read_text())
    assert man["n_sites"] + man["n_sites_skipped_as_done"] == 6


def test_classical_kill_between_flushes_in_parallel_run(plate, tmp_path):
    out = tmp_path / "classical"
    args = ["extract", "classical", plate["index"], "-o", out, *FAST_CLASSICAL, "-j", 2]
    assert stratonet(args, fault="classical.between_flushes").returncode == -signal.SIGKILL
    assert (out / "single_cell.parquet.parts").exists() and not list((out / "site.parquet.parts").glob("part-*"))
    assert stratonet(args).returncode == 0
    assert_same_tables(out, plate["classical_ref"], CLASSICAL_TABLES)


# -- classical: duplicate index rows ---------------------------------------------------------------------------
def test_index_refuses_duplicate_keys_unless_allowed(plate, tmp_path, capsys):
    load_data = next((plate["base"] / "plate").rglob("load_data.csv"))
    rows = pd.read_csv(load_data)
    dup_csv = tmp_path / "load_data.csv"
    pd.concat([rows, rows.iloc[[0]]]).to_csv(dup_csv, index=False)
    assert run_cli(["index", dup_csv, "-o", tmp_path / "dup.parquet"]) == 2
    err = capsys.readouterr().err
    assert "repeat a key" in err and "--allow-duplicates" in err and not (tmp_path / "dup.parquet").exists()
    assert run_cli(["index", dup_csv, "-o", tmp_path / "dup.parquet", "--allow-duplicates"]) == 0
    assert len(pd.read_parquet(tmp_path / "dup.parquet")) == 7


def test_classical_processes_a_repeated_row_once(plate, tmp_path):
    idx = pd.read_parquet(plate["index"])
    dup = tmp_path / "dup.parquet"
    pd.concat([idx, idx.iloc[[0]]], ignore_index=True).to_parquet(dup)
    out = tmp_path / "classical"
    assert run_cli(["extract", "classical", dup, "-o", out, *FAST_CLASSICAL]) == 0
    assert_same_tables(out, plate["classical_ref"], CLASSICAL_TABLES)
    assert json.loads((out / "site.manifest.json").read_text())["n_index_rows_repeated"] == 1
    clash = pd.concat([idx, idx.iloc[[0]].assign(Metadata_moa="other")], ignore_index=True)
    clash.to_parquet(dup)
    assert run_cli(["extract", "classical", dup, "-o", tmp_path / "c2", *FAST_CLASSICAL]) == 2


# -- a changed configuration is refused ------------------------------------------------------------------------
def test_classical_resume_with_other_features_is_refused(plate, tmp_path, capsys):
    out = tmp_path / "classical"
    assert run_cli(["extract", "classical", plate["index"], "-o", out, *FAST_CLASSICAL]) == 0
    config = (out / "extract_classical.config.yaml").read_text()
    capsys.readouterr()
    assert run_cli(["extract", "classical", plate["index"], "-o", out, "--features", "areashape,intensity"]) == 2
    msg = capsys.readouterr().err
    assert "different configuration" in msg and "groups" in msg and "--overwrite" in msg
    assert (out / "extract_classical.config.yaml").read_text() == config  # the refused run left it as it was
    assert run_cli(["extract", "classical", plate["index"], "-o", out, "--nuclei-threshold", "li",
                    *FAST_CLASSICAL]) == 2
    assert "segment" in capsys.readouterr().err
    assert run_cli(["extract", "classical", plate["index"], "-o", out, "--features", "areashape,intensity",
                    "--overwrite"]) == 0
    assert any(c.startswith("Cells_Intensity_") for c in pd.read_parquet(out / "site.parquet").columns)


def test_pixel_resume_with_other_size_is_refused(plate, tmp_path, capsys):
    out = tmp_path / "pixel.parquet"
    assert run_cli(["extract", "pixel", plate["index"], "-o", out, "--size", 16]) == 0
    capsys.readouterr()
    assert run_cli(["extract", "pixel", plate["index"], "-o", out, "--size", 8]) == 2
    msg = capsys.readouterr().err
    assert "different configuration (size)" in msg
    assert pd.read_parquet(out).filter(like="DNA_px_").shape[1] == 256
    assert run_cli(["extract", "pixel", plate["index"], "-o", out, "--size", 8, "--overwrite"]) == 0
    assert pd.read_parquet(out).filter(like="DNA_px_").shape[1] == 64


# -- 10.1: resume keyed on the full row identity (crops sharing a site) ----------------------------------------
@pytest.fixture(scope="module")
def crops(plate):
    """40 single-cell-sized crops of one site as (C, H, W) stacks, indexed with Metadata_ObjectNumber."""
    import tifffile

    site = pd.read_parquet(plate["index"]).iloc[0]
    chans = ["DNA", "ER", "RNA", "AGP", "Mito"]
    image = np.stack([tifffile.imread(site[f"Path_{c}"]) for c in chans])
    folder = plate["base"] / "crops"
    folder.mkdir()
    rows = []
    for i in range(40):
        y, x = divmod(i, 8)
        np.save(folder / f"crop{i:02d}.npy", image[:, y * 16: y * 16 + 48, x * 10: x * 10 + 48])
        rows.append({"FileName": f"crop{i:02d}.npy", "Metadata_Plate": "P", "Metadata_Well": "A01",
                     "Metadata_Site": 1, "Metadata_ObjectNumber": i + 1})
    pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    idx = plate["base"] / "crops.parquet"
    assert run_cli(["index", folder, "--layout", "arrays", "--channels", ",".join(chans), "-o", idx]) == 0
    return idx


@pytest.mark.parametrize("extractor", ["classical", "pixel"])
def test_larger_crop_index_on_the_same_site_writes_every_crop(crops, tmp_path, extractor):
    full = pd.read_parquet(crops)
    first = tmp_path / "first10.parquet"
    full.iloc[:10].to_parquet(first)
    out = tmp_path / ("classical" if extractor == "classical" else "pixel.parquet")
    opts = FAST_CLASSICAL if extractor == "classical" else ["--size", 4]
    assert run_cli(["extract", extractor, first, "-o", out, *opts]) == 0
    assert run_cli(["extract", extractor, crops, "-o", out, *opts]) == 0
    table = pd.read_parquet(out / "site.parquet" if extractor == "classical" else out)
    assert len(table) == 40 and sorted(table["Metadata_ObjectNumber"]) == list(range(1, 41))


def test_index_with_other_row_keys_is_refused(crops, tmp_path, capsys):
    site_only = pd.read_parquet(crops).iloc[:1].drop(columns=["Metadata_ObjectNumber"])
    first = tmp_path / "site.parquet"
    site_only.to_parquet(first)
    out = tmp_path / "pixel.parquet"
    assert run_cli(["extract", "pixel", first, "-o", out, "--size", 4]) == 0
    capsys.readouterr()
    assert run_cli(["extract", "pixel", crops, "-o", out, "--size", 4]) == 2
    assert "key_columns" in capsys.readouterr().err


# -- pixel and deep: kills and signals -------------------------------------------------------------------------
PIXEL_RUN = ("import sys; from stratonet.cli import main; from stratonet.runtime import extract_pixel; "
             "extract_pixel(sys.argv[1], sys.argv[2], size=8, flush_seconds=0)")


def test_pixel_kill_keeps_flushed_sites_and_resumes(plate, tmp_path):
    ref, out = tmp_path / "ref.parquet", tmp_path / "pixel.parquet"
    assert run_cli(["extract", "pixel", plate["index"], "-o", ref, "--size", 8]) == 0
    killed = subprocess.run([sys.executable, "-c", PIXEL_RUN, str(plate["index"]), str(out)], timeout=120,
                            env=_env("pixel.site_done@4"), capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list((tmp_path / "pixel.parquet.parts").glob("part-*.parquet"))) >= 3  # parts bounded by time
    assert run_cli(["extract", "pixel", plate["index"], "-o", out, "--size", 8]) == 0
    keys = SITE
    assert len(pd.read_parquet(out)) == 6 and digest(out, keys) == digest(ref, keys)


# one site a batch (2 channel images)
DEEP = ["--model", "stratonet18", "--input-size", 32, "--workers", 0, "--batch-size", 2, "--channels", "DNA,ER"]


@pytest.fixture(scope="module")
def deep_ref(plate):
    ref = plate["base"] / "deep_ref.parquet"
    assert run_cli(["extract", "deep", plate["index"], "-o", ref, *DEEP]) == 0
    return ref


@pytest.mark.parametrize("fault, flush_seconds, code", [
    ("deep.batch_done@3:int", 3600, 130),  # Ctrl-C
    ("deep.batch_done@3:term", 3600, 143),  # SIGTERM: 128 + 15, the shell convention (issue 27, D9)
    ("deep.batch_done@4", 0, -signal.SIGKILL),  # kill -9 with parts bounded by time
])
def test_deep_interrupt_flushes_and_resume_matches(plate, deep_ref, tmp_path, fault, flush_seconds, code):
    out = tmp_path / "deep.parquet"
    run = stratonet(["extract", "deep", plate["index"], "-o", out, *DEEP, "--flush-seconds", flush_seconds],
                    fault=fault)
    assert run.returncode == code, run.stdout + run.stderr
    parts = list((tmp_path / "deep.parquet.parts").glob("part-*.parquet"))
    if code in (130, 143):  # Ctrl-C / SIGTERM: the 3 finished sites reach disk (parts of 256 rows), with the message
        assert "interrupted; what was written is kept and a rerun resumes" in run.stderr
        assert sum(len(pd.read_parquet(p)) for p in parts) == 3
    else:  # kill -9: the sites flushed by the time bound survive
        assert sum(len(pd.read_parquet(p)) for p in parts) >= 3
    assert run_cli(["extract", "deep", plate["index"], "-o", out, *DEEP]) == 0
    assert len(pd.read_parquet(out)) == 6 and digest(out, SITE) == digest(deep_ref, SITE)


def test_deep_kill_between_cell_and_site_flush(plate, tmp_path):
    # cells batches scale with the crop (--batch-size 4 -> 196 crops of 32 px): one site per batch, 6 batches
    opts = [*DEEP, "--mode", "cells", "--crop-size", 32, "--batch-size", 4]
    ref, out = tmp_path / "ref.parquet", tmp_path / "deep.parquet"
    assert run_cli(["extract", "deep", plate["index"], "-o", ref, *opts]) == 0
    assert stratonet(["extract", "deep", plate["index"], "-o", out, *opts],
                     fault="deep.between_flushes@2").returncode == -signal.SIGKILL
    assert run_cli(["extract", "deep", plate["index"], "-o", out, *opts]) == 0
    cells_keys = SITE + ["Metadata_ObjectNumber"]
    for name, keys in (("deep.parquet", SITE), ("deep_cells.parquet", cells_keys)):
        got = pd.read_parquet(tmp_path / name)
        assert not got.duplicated(subset=keys).any()
        assert digest(tmp_path / name, keys) == digest(tmp_path / name.replace("deep", "ref"), keys)


# -- the lock: one run per output -------------------------------------------------------------------------------
def test_second_extractor_on_the_same_output_refuses(plate, tmp_path, capsys):
    out = tmp_path / "classical"
    first = spawn(["extract", "classical", plate["index"], "-o", out, *FAST_CLASSICAL],
                  fault="classical.site_done:hang")
    try:
        wait_for(lambda: (out / "stratonet.lock").exists() and (out / "stratonet.lock").read_text(), 60, "the lock")
        assert run_cli(["extract", "classical", plate["index"], "-o", out, *FAST_CLASSICAL]) == 2
        msg = capsys.readouterr().err
        assert f"pid {first.pid}" in msg and "another run" in msg and len(msg.strip().splitlines()) == 1
    finally:
        first.kill()
        first.wait()
    # the holder died without releasing: its lock is stale and the next run takes it over and resumes
    assert json.loads((out / "stratonet.lock").read_text())["pid"] == first.pid
    assert run_cli(["extract", "classical", plate["index"], "-o", out, *FAST_CLASSICAL]) == 0
    assert not (out / "stratonet.lock").exists()
    assert_same_tables(out, plate["classical_ref"], CLASSICAL_TABLES)


def test_two_deep_runs_on_one_output(plate, tmp_path):
    out = tmp_path / "deep.parquet"
    args = ["extract", "deep", plate["index"], "-o", out, *DEEP]
    runs = [spawn(args, fault="deep.batch_done:hang"), spawn(args, fault="deep.batch_done:hang")]
    try:
        refused = wait_for(lambda: [r for r in runs if r.poll() is not None], 120, "one run to refuse")
        assert len(refused) == 1 and refused[0].returncode == 2
        assert "being written by another run" in refused[0].stdout.read()
    finally:
        for r in runs:
            r.kill()
            r.wait()


# -- process hygiene: SIGTERM, kill -9, hangs ------------------------------------------------------------------
def test_sigterm_stops_workers_and_keeps_finished_sites(plate, tmp_path):
    out = tmp_path / "classical"
    mark = tmp_path / "parked"
    run = spawn(["extract", "classical", plate["index"], "-o", out, *FAST_CLASSICAL, "-j", 2],
                fault="classical.site_done@2:hang", STRATONET_FAULT_MARK=str(mark))
    wait_for(mark.exists, 90, "two sites handled")  # the main process is parked in the fault hook
    family = descendants(run.pid)
    assert len(family) >= 3  # fork server and 2 workers (and the resource tracker)
    run.send_signal(signal.SIGTERM)
    run.wait(timeout=60)
    assert run.returncode == 143 and "interrupted" in run.stdout.read()  # 128 + SIGTERM
    assert_all_gone(family)
    parts = list((out / "site.parquet.parts").glob("part-*.parquet"))
    assert sum(len(pd.read_parquet(p)) for p in parts) >= 2  # the sites finished before SIGTERM were flushed
    assert run_cli(["extract", "classical", plate["index"], "-o", out, *FAST_CLASSICAL, "-j", 2]) == 0
    assert_same_tables(out, plate["classical_ref"], CLASSICAL_TABLES)


def test_kill_9_of_the_parent_leaves_no_worker(plate, tmp_path):
    run = spawn(["extract", "classical", plate["index"], "-o", tmp_path / "c", *FAST_CLASSICAL, "-j", 2],
                fault="classical.worker:hang")
    wait_for(lambda: len(descendants(run.pid)) >= 3, 90, "workers")
    time.sleep(1)
    family = descendants(run.pid)
    run.kill()
    run.wait()
    assert_all_gone(family)


def test_watchdog_fails_cleanly_when_workers_stall(plate, tmp_path):
    t0 = time.monotonic()
    run = stratonet(["extract", "classical", plate["index"], "-o", tmp_path / "c", *FAST_CLASSICAL, "-j", 2,
                     "--stall-timeout", 5], fault="classical.worker:hang", timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "no worker finished a site in 5 s" in run.stderr and "Traceback" not in run.stdout + run.stderr
    assert time.monotonic() - t0 < 100


def test_parallel_classical_never_hangs(plate, tmp_path):
    """A guard: 4 launches of `extract classical -j 2` (two at a time), each within its timeout. The full check
    (40 launches) is benchmarks/quality/classical_hang.py, results in benchmarks/quality/classical_hang.md."""
    idx = tmp_path / "two_sites.parquet"
    pd.read_parquet(plate["index"]).iloc[:2].to_parquet(idx)
    launches, per_launch = 4, 120
    for pair in range(launches // 2):
        runs = [spawn(["extract", "classical", idx, "-o", tmp_path / f"c{pair}_{k}", *FAST_CLASSICAL, "-j", 2])
                for k in range(2)]
        for k, run in enumerate(runs):
            try:
                out, _ = run.communicate(timeout=per_launch)
            except subprocess.TimeoutExpired:
                family = descendants(run.pid)
                run.kill()
                for p in family:
                    p.kill()
                pytest.fail(f"launch {2 * pair + k + 1} hung (> {per_launch} s)")
            assert run.returncode == 0, out


def test_output_lock_refuses_a_live_holder_and_takes_over_a_stale_one(tmp_path):
    import fcntl

    from stratonet.runtime.runguard import OutputLock, OutputLockedError, lock_path

    out = tmp_path / "deep.parquet"
    path = lock_path(out)
    assert path == tmp_path / "deep.parquet.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)  # another holder (an open file description of its own)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, json.dumps({"pid": 4242, "host": "elsewhere", "started": "then"}).encode())
    with pytest.raises(OutputLockedError, match="pid 4242 on elsewhere"):
        OutputLock(out).acquire()
    os.close(fd)  # the holder dies: the kernel drops its lock, its file stays (stale)
    with OutputLock(out), OutputLock(out):  # taken over; re-entrant within a process
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert not path.exists()


def test_a_dead_worker_fails_the_run_cleanly(plate, tmp_path):
    run = stratonet(["extract", "classical", plate["index"], "-o", tmp_path / "c", *FAST_CLASSICAL, "-j", 2],
                    fault="classical.worker:kill", timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "a worker process died while processing" in run.stderr and "Traceback" not in run.stderr
