"""Scale-out: --shard I/N with merge, and the Ray engine, against the local engine on a synthetic plate."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli
from stratonet.core.errors import ConfigError
from stratonet.runtime.scaleout import parse_shard, select_shard, well_units


@pytest.fixture(scope="module")
def plate_index(tmp_path_factory) -> Path:
    """A 6-well x 2-site synthetic plate (128 px), indexed."""
    root = tmp_path_factory.mktemp("scaleout")
    assert run_cli(["synth", root / "plate", "--wells", 6, "--sites", 2, "--size", 128, "--seed", 3]) == 0
    idx = root / "index.parquet"
    assert run_cli(["index", root / "plate" / "load_data.csv", "-o", idx]) == 0
    return idx


def test_parse_shard():
    assert parse_shard("2/8") == (2, 8) and parse_shard(" 0 / 1 ") == (0, 1)
    for bad in ("8/8", "-1/3", "a/b", "3"):
        with pytest.raises(ConfigError):
            parse_shard(bad)


def test_shards_partition_whole_wells_in_index_order():
    idx = pd.DataFrame({"Metadata_Plate": ["P"] * 14, "Metadata_Well": [f"A{w:02d}" for w in range(7) for _ in (1, 2)],
                        "Metadata_Site": [1, 2] * 7})
    parts = [select_shard(idx, i, 3) for i in range(3)]
    assert sum(len(p) for p in parts) == len(idx)
    assert pd.concat(parts).index.tolist() == idx.index.tolist()  # contiguous blocks, index order kept
    wells = [set(well_units(p)) for p in parts]
    assert all(a.isdisjoint(b) for i, a in enumerate(wells) for b in wells[i + 1:])


def test_pixel_shards_merge_equals_local_and_missing_shard_is_named(plate_index, tmp_path, capsys):
    local = tmp_path / "local" / "pixel.parquet"
    assert run_cli(["extract", "pixel", plate_index, "-o", local, "--size", "8"]) == 0
    out = tmp_path / "sharded" / "pixel.parquet"
    for i in (0, 2):
        assert run_cli(["extract", "pixel", plate_index, "-o", out, "--size", "8", "--shard", f"{i}/3"]) == 0
    capsys.readouterr()
    assert run_cli(["merge", out]) != 0
    err = capsys.readouterr()
    assert "1/3" in (err.out + err.err) and "missing" in (err.out + err.err)
    assert not out.exists()
    assert run_cli(["extract", "pixel", plate_index, "-o", out, "--size", "8", "--shard", "1/3"]) == 0
    assert run_cli(["merge", out]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(local))


ray = pytest.importorskip("ray")


DEEP = ["--model", "stratonet18", "--input-size", "64", "--batch-size", "16", "--workers", "0"]


def test_ray_deep_equals_local(plate_index, tmp_path, ray_cluster):
    local = tmp_path / "local" / "deep.parquet"
    assert run_cli(["extract", "deep", plate_index, "-o", local, *DEEP]) == 0
    out = tmp_path / "ray" / "deep.parquet"
    assert run_cli(["extract", "deep", plate_index, "-o", out, *DEEP, "--engine", "ray", "--ray-mode", "tasks",
                    "--ray-shards", "3"]) == 0
    a, b = pd.read_parquet(out), pd.read_parquet(local)
    pd.testing.assert_frame_equal(a, b)  # row for row, value for value (bit-identical on CPU)
    assert len(a) == 12 and not a.duplicated(["Metadata_Plate", "Metadata_Well", "Metadata_Site"]).any()


def test_ray_classical_equals_local(plate_index, tmp_path, ray_cluster):
    opts = ["--features", "intensity,areashape", "-j", "1"]
    assert run_cli(["extract", "classical", plate_index, "-o", tmp_path / "local", *opts]) == 0
    assert run_cli(["extract", "classical", plate_index, "-o", tmp_path / "ray", *opts, "--engine", "ray",
                    "--ray-shards", "2"]) == 0
    for name in ("single_cell.parquet", "site.parquet", "well.parquet"):
        got, want = pd.read_parquet(tmp_path / "ray" / name), pd.read_parquet(tmp_path / "local" / name)
        # A feature that is NaN in every well is stored with Parquet's null type by one run and as double by
        # another (whichever shard saw a value type first); the values are the same.
        all_nan = [c for c in want.columns if want[c].dtype == object and want[c].isna().all()]
        pd.testing.assert_frame_equal(got, want.astype({c: "float64" for c in all_nan}))


def test_killed_ray_worker_still_gives_complete_duplicate_free_table(plate_index, tmp_path, ray_cluster):
    """Shard 1's first attempt writes part of its rows, then its worker process dies (os._exit); Ray retries the
    task, which resumes from the flushed part: the merged table equals an uninterrupted local run."""
    from stratonet.runtime import extract_pixel
    from stratonet.runtime.scaleout import run_on_ray, shard_output

    index = pd.read_parquet(plate_index)
    local = tmp_path / "local.parquet"
    extract_pixel(index, local, size=8)
    out = tmp_path / "ray" / "pixel.parquet"
    marker = tmp_path / "killed-once"
    from stratonet.cli.scaleout import shared_plate_scaling

    # every shard must scale with the plate percentiles of the whole index, as the CLI arranges
    scaling_file = shared_plate_scaling(index, out, None, 24, 0, True)

    def run(idx, dest):
        if dest == shard_output(out, 1, 3) and not marker.exists():
            extract_pixel(idx.iloc[:2], dest, size=8, scaling_file=scaling_file)  # some rows reach disk ...
            marker.write_text("x")
            os._exit(1)  # ... then the worker dies mid-shard
        return {"output": str(extract_pixel(idx, dest, size=8, scaling_file=scaling_file))}

    man = run_on_ray(run, index, out, shards=3)
    assert marker.exists() and man["shards"] == 3
    got = pd.read_parquet(out)
    prov = [c for c in got.columns if c.startswith("Metadata_")]
    assert len(got) == 12 and list(got[prov].columns) == list(pd.read_parquet(local)[prov].columns)
    assert not got.duplicated(["Metadata_Plate", "Metadata_Well", "Metadata_Site"]).any()
    pd.testing.assert_frame_equal(got, pd.read_parquet(local))


def test_task_resources_take_a_node_or_a_gpu():
    from stratonet.runtime.scaleout import task_resources

    assert task_resources([{"Resources": {"CPU": 16.0}}, {"Resources": {"CPU": 32.0}}]) == (16.0, 0.0, 2)
    assert task_resources([{"Resources": {"CPU": 32.0, "GPU": 4.0}}]) == (8.0, 1.0, 4)
    assert task_resources([{"Resources": {"CPU": 8.0, "GPU": 1.0}}, {"Resources": {"CPU": 8.0}}]) == (8.0, 0.0, 2)


def test_a_shard_cannot_estimate_plate_scaling_from_its_own_wells(plate_index, tmp_path):
    """Percentiles from one shard's wells would scale plates differently per shard: refused, not silently done."""
    from stratonet.runtime import extract_pixel
    from stratonet.runtime.scaleout import run_shard

    index = pd.read_parquet(plate_index)
    with pytest.raises(ConfigError, match="whole index"):
        run_shard(lambda idx, dest: extract_pixel(idx, dest, size=8), index, tmp_path / "p.parquet", 0, 2)
