"""Issue 27, D9: a kill -9 of `extract classical -j 2` left a `pymp-*` folder in the temporary directory."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from test_faults import FAST_CLASSICAL, descendants, plate, spawn, stratonet, wait_for  # noqa: F401 (fixture)


def test_kill_9_leaves_no_multiprocessing_folder_after_the_next_run(plate, tmp_path):  # noqa: F811
    # a short TMPDIR: the fork server's socket lives there, and a Unix socket path has at most 107 bytes (pytest-xdist's
    # tmp_path, /tmp/pytest-of-root/pytest-N/popen-gwK/<test name>/..., plus the socket name can pass that)
    tmpdir = Path(tempfile.mkdtemp(prefix="snmp-"))
    run = spawn(["extract", "classical", plate["index"], "-o", tmp_path / "c", *FAST_CLASSICAL, "-j", 2],
                fault="classical.worker:hang", TMPDIR=str(tmpdir))
    wait_for(lambda: len(descendants(run.pid)) >= 3, 90, "workers")
    time.sleep(1)
    run.kill()
    run.wait()
    left = sorted(p.name for p in tmpdir.iterdir() if "pymp" in p.name)
    assert left == [f"stratonet-pymp-{run.pid}"]  # the killed run's folder, named by its pid
    done = stratonet(["extract", "classical", plate["index"], "-o", tmp_path / "c2", *FAST_CLASSICAL, "-j", 2],
                     TMPDIR=str(tmpdir))
    assert done.returncode == 0, done.stderr
    assert not [p for p in tmpdir.iterdir() if "pymp" in p.name]  # swept by the next run, its own removed at exit
    shutil.rmtree(tmpdir, ignore_errors=True)
