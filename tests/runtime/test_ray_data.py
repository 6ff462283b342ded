"""`extract deep --engine ray` (Ray Data streaming: decode tasks, a model actor pool, one Parquet part per unit)
against the local engine on a small synthetic plate: equality, resume after an interruption, a killed actor."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from stratonet.core.tables import read_provenance

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

KEYS = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
# 5 channels, batch 16 -> 3 sites per model batch; 12 sites -> 1 unit (the local engine's one part) on the one actor
# decoding them
DEEP = ["--model", "stratonet18", "--input-size", "64", "--batch-size", "16", "--seed", "1"]


@pytest.fixture(scope="module")
def plate(tmp_path_factory) -> tuple[Path, Path]:
    """A 6-well x 2-site synthetic plate (128 px), indexed, and the local engine's table for it."""
    root = tmp_path_factory.mktemp("raydata")
    assert run_cli(["synth", root / "plate", "--wells", 6, "--sites", 2, "--size", 128, "--seed", 5]) == 0
    idx = root / "index.parquet"
    assert run_cli(["index", root / "plate" / "load_data.csv", "-o", idx]) == 0
    local = root / "local" / "deep.parquet"
    assert run_cli(["extract", "deep", idx, "-o", local, *DEEP, "--workers", "0"]) == 0
    return idx, local


def _same_as_local(out: Path, local: Path) -> None:
    got, want = pd.read_parquet(out), pd.read_parquet(local)
    assert len(got) == 12 and not got.duplicated(KEYS).any()
    pd.testing.assert_frame_equal(got, want)  # row for row, value for value: bit-identical on CPU
    assert got.equals(want)
    meta_got, meta_want = _meta(out), _meta(local)
    assert meta_got == meta_want and meta_got  # same provenance and resume signature


def _meta(path: Path) -> dict:
    """Schema metadata as JSON, without the path of the plate scaling file (it lies next to each output)."""
    def strip(d):
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if not str(v).endswith(".scaling.json")}
        return d

    return {k: strip(json.loads(v)) for k, v in (pq.read_schema(path).metadata or {}).items()
            if k.startswith(b"stratonet")}


@pytest.mark.parametrize("decode", ["auto", "tasks"])
def test_ray_data_deep_equals_local(plate, tmp_path, ray_cluster, decode):
    """auto on this CPU-only cluster decodes in the model actor; tasks decodes in separate 1-CPU tasks."""
    idx, local = plate
    out = tmp_path / "ray" / "deep.parquet"
    assert run_cli(["extract", "deep", idx, "-o", out, *DEEP, "--engine", "ray", "--ray-decode", decode]) == 0
    _same_as_local(out, local)
    man = json.loads((tmp_path / "ray" / "deep.manifest.json").read_text())
    assert man["engine"]["name"] == "ray-data" and man["sites_processed"] == 12
    if decode == "auto":  # a lone actor decoding its units writes the local engine's parts (one here)
        assert man["engine"]["units"] == 1 and man["engine"]["sites_per_unit"] == 12
    else:  # decoded units travel through the object store: eight per actor wanted, one batch at least
        assert man["engine"]["units"] == 4 and man["engine"]["sites_per_unit"] == 3
    if decode == "auto":
        assert man["engine"]["decode"] == "actor" and man["engine"]["cpus_per_actor"] == 2.0
        assert man["config"]["decode"].startswith("in the model actors on 2 thread(s)")
        groups = man["engine"]["decode_groups"]  # each unit of 6 sites is one group (2 threads x 3 sites per batch)
        assert groups["ahead"] + groups["in_line"] == 2
    else:
        assert man["engine"]["decode"] == "tasks" and man["engine"]["decode_cpus_per_task"] == 1
        assert man["engine"]["cpus_per_actor"] == 1.0
    assert not (tmp_path / "ray" / "deep.parquet.parts").exists()  # parts merged and removed
    # a rerun of a finished table does nothing and changes nothing
    assert run_cli(["extract", "deep", idx, "-o", out, *DEEP, "--engine", "ray"]) == 0
    _same_as_local(out, local)


def test_ray_data_keeps_native_size_fields_like_local(tmp_path, ray_cluster):
    """No --input-size and fields larger than the model input: both engines feed them unresampled, identically."""
    assert run_cli(["synth", tmp_path / "plate", "--wells", 2, "--sites", 1, "--size", 240, "--seed", 2]) == 0
    idx = tmp_path / "index.parquet"
    assert run_cli(["index", tmp_path / "plate" / "load_data.csv", "-o", idx]) == 0
    opts = ["--model", "stratonet18", "--channels", "DNA,RNA"]
    assert run_cli(["extract", "deep", idx, "-o", tmp_path / "local" / "deep.parquet", *opts]) == 0
    assert run_cli(["extract", "deep", idx, "-o", tmp_path / "ray" / "deep.parquet", *opts, "--engine", "ray"]) == 0
    for engine in ("local", "ray"):
        assert read_provenance(tmp_path / engine / "deep.parquet")["input_size"] == "native 240x240"
    got, want = pd.read_parquet(tmp_path / "ray" / "deep.parquet"), pd.read_parquet(tmp_path / "local" / "deep.parquet")
    assert len(want) == 2 and got.equals(want)


def test_ray_data_resumes_an_interrupted_run_without_duplicates(plate, tmp_path, ray_cluster, monkeypatch):
    """The driver is interrupted after two units came back; the rerun runs only the units without a complete part."""
    import stratonet.runtime.raydata as raydata
    from stratonet.runtime.raydata import extract_deep_ray

    idx, local = plate
    out = tmp_path / "ray" / "deep.parquet"
    opts = dict(model="stratonet18", input_size=64, batch_size=16, seed=1, progress=False, unit_size=3)
    real_summaries = raydata._unit_summaries

    def interrupted_summaries(ds):
        for n, item in enumerate(real_summaries(ds)):
            if n == 2:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(raydata, "_unit_summaries", interrupted_summaries)
    with pytest.raises(KeyboardInterrupt):
        extract_deep_ray(pd.read_parquet(idx), out, **opts)
    monkeypatch.setattr(raydata, "_unit_summaries", real_summaries)
    parts = sorted((out.parent / "deep.parquet.parts").glob("part-*.parquet"))
    assert 2 <= len(parts) and not out.exists()
    (out.parent / "deep.parquet.parts" / "part-00003.tmp").write_text("half a part")  # a write cut short
    man = extract_deep_ray(pd.read_parquet(idx), out, **opts)
    assert man["engine"]["units_resumed"] >= 2 and man["sites_resumed"] + man["sites_processed"] == 12
    _same_as_local(out, local)


def test_killed_model_actor_still_gives_complete_duplicate_free_table(plate, tmp_path):
    """Every model actor process is SIGKILLed right after writing its third unit's part, before returning it:
    Ray restarts the actor and retries the unit, which rewrites the same part. The table equals a local run's."""
    idx, local = plate
    mark = tmp_path / "killed"
    ray.shutdown()  # the module cluster, if any: this one passes the fault to its workers
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"STRATONET_FAULT": "deep.ray_unit_written@3:kill",
                                       "STRATONET_FAULT_MARK": str(mark)}})
    try:
        out = tmp_path / "ray" / "deep.parquet"
        assert run_cli(["extract", "deep", idx, "-o", out, *DEEP, "--engine", "ray", "--ray-unit-size", 3]) == 0
        assert mark.exists() and len(mark.read_text().split()) >= 1  # at least one actor was killed
        _same_as_local(out, local)
    finally:
        ray.shutdown()


def test_unit_sizes_are_whole_model_batches():
    from stratonet.runtime.raydata import actor_resources, unit_sites

    assert unit_sites(12, 3, 10, 256, 1) == 3  # 8 units per actor wanted: one batch each
    assert unit_sites(100_000, 12, 1 << 20, 256, 1) == 60  # 64 MB of decoded sites at most
    assert unit_sites(100_000, 12, 1000, 256, 1) == 264  # about rows_per_part: whole batches, rounded up
    # decoded in the actor: no memory bound (the unit streams through the actor); a lone actor writes the local
    # engine's parts (about rows_per_part sites each), several get two units each for balance
    assert unit_sites(192, 3, 10, 256, 1, decode_in_actor=True) == 192
    assert unit_sites(768, 3, 10, 256, 1, decode_in_actor=True) == 258  # 3 parts, as a local run writes
    assert unit_sites(100_000, 12, 1 << 20, 256, 1, decode_in_actor=True) == 264
    assert unit_sites(192, 3, 10, 256, 4, decode_in_actor=True) == 24
    assert unit_sites(520, 3, 10, 256, 1, decode_in_actor=True) == 174  # evened out: not 258 + 258 + a runt of 4
    assert actor_resources([{"Resources": {"CPU": 2.0}}], "auto", None) == (1, 1.0, 0.0, "cpu")
    assert actor_resources([{"Resources": {"CPU": 16.0, "GPU": 2.0}}], "auto", None) == (2, 1.0, 1.0, "cuda")
    assert actor_resources([{"Resources": {"CPU": 16.0}}] * 2, "auto", None) == (2, 12.0, 0.0, "cpu")
    # actors that decode their own units hold their node's share whole; GPU actors are unchanged
    assert actor_resources([{"Resources": {"CPU": 2.0}}], "auto", None, True) == (1, 2.0, 0.0, "cpu")
    assert actor_resources([{"Resources": {"CPU": 16.0}}] * 2, "auto", 4, True) == (4, 8.0, 0.0, "cpu")
    assert actor_resources([{"Resources": {"CPU": 16.0, "GPU": 2.0}}], "auto", None, True) == (2, 1.0, 1.0, "cuda")
    from stratonet.runtime.raydata import decode_placement

    assert decode_placement("auto", "cpu") == "actor" and decode_placement("auto", "cuda") == "tasks"
    assert decode_placement("tasks", "cpu") == "tasks" and decode_placement("actor", "cuda") == "actor"
    with pytest.raises(Exception, match="auto, actor or tasks"):
        decode_placement("gpu", "cpu")
    from stratonet.runtime.raydata import actor_threads

    assert actor_threads([{"Resources": {"CPU": 2.0}}], 1, "cpu") == 2  # the model on every core, as locally
    assert actor_threads([{"Resources": {"CPU": 16.0}}] * 2, 4, "cpu") == 8 and actor_threads([], 1, "cuda") == 1


def test_unit_summaries_arrive_as_each_unit_finishes(ray_cluster, tmp_path):
    """The driver gets a unit's summary as soon as that unit is done (the progress bar and resume bookkeeping move
    with the work); Dataset.iter_rows prefetches a block ahead and held unit 0 back until unit 1 was done too."""
    from stratonet.runtime.raydata import _unit_summaries

    def held_back_unless_consumed(batch: dict, marker: str) -> dict:
        """Unit 1 waits (up to 20 s) for the consumer to have received unit 0, and reports whether it saw that.
        (Nested, so that Ray pickles it by value: the test module is not importable on the workers.)"""
        import time
        from pathlib import Path

        import numpy as np

        seen = []
        for unit in batch["unit"]:
            waited = 0.0
            while int(unit) == 1 and not Path(marker).exists() and waited < 20:
                time.sleep(0.1)
                waited += 0.1
            seen.append(int(unit) == 0 or Path(marker).exists())
        return {"unit": batch["unit"], "saw_consumer": np.asarray(seen)}

    marker = tmp_path / "unit0-received"
    ds = ray.data.from_items([{"unit": 0}, {"unit": 1}], override_num_blocks=2).map_batches(
        held_back_unless_consumed, fn_kwargs={"marker": str(marker)}, batch_size=1, num_cpus=0.5)
    got = []
    for row in _unit_summaries(ds):
        got.append((int(row["unit"]), bool(row["saw_consumer"])))
        if int(row["unit"]) == 0:
            marker.write_text("yes")
    assert sorted(got) == [(0, True), (1, True)]


def test_unit_progress_counts_finished_units_and_the_actors_reports(tmp_path):
    """The bar's position: whole finished units from the summaries, plus the counts actors wrote for the others; a
    report of a finished unit is not counted twice, and an unreadable report counts as nothing until rewritten."""
    from stratonet.runtime.raydata import UnitProgress

    with UnitProgress(tmp_path / ".progress") as counts:
        assert counts.sites() == 0  # no folder yet
        UnitProgress.report(counts.directory, 0, 6)
        UnitProgress.report(counts.directory, 1, 3)
        assert counts.sites() == 9
        UnitProgress.report(counts.directory, 0, 9)  # replaced, not added
        assert counts.sites() == 12 and not list(counts.directory.glob("*.tmp"))
        counts.unit_done(0, 12)
        assert counts.sites() == 15 and not (counts.directory / "unit-0").exists()
        (counts.directory / "unit-2").write_text("")  # being rewritten
        (counts.directory / "unit-3").write_text("x")
        (counts.directory / "unit-4.123.tmp").write_text("7")  # a report being written
        assert counts.sites() == 15
    assert not counts.directory.exists()  # removed on exit, so the parts folder can go after the merge
    (tmp_path / ".progress").mkdir()
    (tmp_path / ".progress" / "unit-0").write_text("5")  # left by an interrupted run
    with UnitProgress(tmp_path / ".progress") as counts:
        assert counts.sites() == 0


def test_actors_report_sites_within_a_unit(plate, tmp_path, ray_cluster, monkeypatch):
    """With the progress bar on, an actor writes how many sites of its unit are done (the first batch at once), so
    the bar counts sites, not whole units; the counts are gone after the run, and so is the parts folder."""
    import stratonet.runtime.raydata as raydata
    from stratonet.runtime.raydata import extract_deep_ray

    idx, local = plate
    seen: dict[int, int] = {}
    real_done = raydata.UnitProgress.unit_done

    def unit_done(self, unit, sites):
        report = self.directory / f"unit-{unit}"
        seen[unit] = int(report.read_text()) if report.exists() else 0
        real_done(self, unit, sites)

    monkeypatch.setattr(raydata.UnitProgress, "unit_done", unit_done)
    out = tmp_path / "ray" / "deep.parquet"
    man = extract_deep_ray(pd.read_parquet(idx), out, model="stratonet18", input_size=64, batch_size=16, seed=1,
                           progress=True, unit_size=6)
    assert man["engine"]["units"] == 2 and sorted(seen) == [0, 1]
    assert all(3 <= n <= 6 for n in seen.values())  # at least the first batch of 3 sites was reported
    assert not (out.parent / "deep.parquet.parts").exists()
    _same_as_local(out, local)


def test_ray_data_keeps_its_info_lines_and_bar_notice_off_the_terminal():
    """Ray Data's INFO lines and its "Progress bars disabled" warning (this module turns its bars off, having its
    own) would print over the run's progress bar; its other warnings still reach the terminal."""
    import logging

    from stratonet.runtime.raydata import import_ray

    import_ray()
    console = [h for h in logging.getLogger("ray.data").handlers if h.name == "console"]
    assert console and all(h.level == logging.WARNING for h in console)
    assert logging.getLogger("ray.data._internal.progress").getEffectiveLevel() == logging.ERROR
