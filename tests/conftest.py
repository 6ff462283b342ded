"""Shared test fixtures: paths to the real data in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
JUMP_FOV = SHARED_DATA / "cytodataframe_fov" / "JUMP_plate_BR00117006"
PEDIATRIC_FOV = SHARED_DATA / "cytodataframe_fov" / "pediatric_cancer_atlas_profiling"
BBBC021 = SHARED_DATA / "bbbc021_profiles"
JUMP_METADATA = SHARED_DATA / "jump_metadata"


def need(path: Path) -> Path:
    """Skip the test when a piece of ../shared/data is absent (it is present in CI)."""
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


@pytest.fixture
def jump_fov() -> Path:
    return need(JUMP_FOV)


@pytest.fixture
def pediatric_fov() -> Path:
    return need(PEDIATRIC_FOV)


@pytest.fixture
def bbbc021() -> Path:
    return need(BBBC021)


@pytest.fixture
def jump_metadata() -> Path:
    return need(JUMP_METADATA)


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless Chromium binary for the report checks (skips where none is installed; CI installs one)."""
    from stratonet.report.browser import find_chromium

    path = find_chromium()
    if path is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium); CI installs it")
    return path


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster per test module (2 CPUs, no dashboard), shut down after it."""
    import os

    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def run_cli(argv: list[str]) -> int:
    """Run ``stratonet`` in-process and return its exit code (0 when it returned normally)."""
    from stratonet.cli import main

    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(autouse=True, scope="session")
def _weights_cache(tmp_path_factory):
    """Converted pretrained weights go to a per-session cache, never the user's ~/.cache/stratonet."""
    import os

    old = os.environ.get("STRATONET_CACHE")
    os.environ["STRATONET_CACHE"] = str(tmp_path_factory.mktemp("stratonet-cache"))
    yield
    if old is None:
        os.environ.pop("STRATONET_CACHE", None)
    else:
        os.environ["STRATONET_CACHE"] = old


# Test helpers (plate_run.py, train_fixtures.py, report_fixtures.py) live beside this file; tests in subfolders
# import them by name (added by the renovation script).
import sys as _sys  # noqa: E402

if str(Path(__file__).resolve().parent) not in _sys.path:
    _sys.path.insert(0, str(Path(__file__).resolve().parent))


def one_line_error(capsys, *needles) -> str:
    """The captured stderr ends in one ``error:`` line holding every needle; no traceback, no internal error.
    Returns the whole stderr."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error:"), err
    for n in needles:
        assert n in err, err
    return err
