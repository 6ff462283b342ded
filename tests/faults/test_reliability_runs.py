"""Issue 27: a run's identity, its refusal, its start and its end (D1, D4, D5, D9), for every extractor."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_cli

DEEP = ["--model", "stratonet18", "--input-size", "32", "--workers", "0"]


def tiny_index(tmp_path: Path, n: int = 3, dtype=np.uint16) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for s in range(n):
        row = {"Metadata_Plate": "P1", "Metadata_Well": f"A0{s + 1}", "Metadata_Site": 1}
        for ch in ("DNA", "ER"):
            p = tmp_path / "img" / f"A0{s + 1}_{ch}.tif"
            p.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(p, rng.integers(0, 4000, (48, 48)).astype(dtype))
            row[f"Path_{ch}"] = str(p)
        rows.append(row)
    idx = tmp_path / "index.parquet"
    pd.DataFrame(rows).to_parquet(idx)
    return idx


@pytest.mark.parametrize("kind,args", [("pixel", ["--size", "4"]), ("deep", DEEP)])
def test_d1_resume_by_another_path_is_accepted(tmp_path, monkeypatch, kind, args):
    """D1: the same run named by a relative, then an absolute path, and after its folder moved, resumes."""
    idx = tiny_index(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert run_cli(["extract", kind, "-o", "rp/out.parquet", idx, *args]) == 0
    assert run_cli(["extract", kind, "-o", str(tmp_path / "rp" / "out.parquet"), idx, *args]) == 0
    shutil.move(tmp_path / "rp", tmp_path / "moved")
    os.chdir(tmp_path / "moved")
    assert run_cli(["extract", kind, "-o", "out.parquet", idx, *args]) == 0


def test_d1_given_scaling_file_counts_by_content(tmp_path, monkeypatch):
    idx = tiny_index(tmp_path)
    assert run_cli(["extract", "pixel", "-o", tmp_path / "a.parquet", idx, "--size", "4"]) == 0
    copy = tmp_path / "elsewhere" / "s.json"
    copy.parent.mkdir()
    shutil.copy(tmp_path / "a.scaling.json", copy)
    out = tmp_path / "b.parquet"
    assert run_cli(["extract", "pixel", "-o", out, idx, "--size", "4", "--scaling-file", copy]) == 0
    moved = tmp_path / "s2.json"
    shutil.copy(copy, moved)  # same numbers under another path: the same run
    assert run_cli(["extract", "pixel", "-o", out, idx, "--size", "4", "--scaling-file", moved]) == 0


def test_d9_refusal_names_every_changed_setting(tmp_path, capsys):
    """D9: a refusal named only 'scaling' when the model also changed, and reported --seed as 'scaling'."""
    idx = tiny_index(tmp_path)
    out = tmp_path / "d.parquet"
    assert run_cli(["extract", "deep", idx, "-o", out, *DEEP]) == 0
    capsys.readouterr()
    assert run_cli(["extract", "deep", idx, "-o", out, *DEEP, "--scaling-sites", "2",
                    "--model", "resnet18"]) == 2
    err = capsys.readouterr().err
    assert "model" in err and "scaling.sites_per_plate" in err and "Traceback" not in err
    assert run_cli(["extract", "deep", idx, "-o", out, *DEEP, "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert "scaling.seed" in err and "weights" in err


@pytest.mark.parametrize("kind,args", [("pixel", []), ("deep", DEEP), ("classical", [])])
def test_d4_index_with_zero_rows_exits_2_with_one_line(tmp_path, capsys, kind, args):
    idx = tiny_index(tmp_path)
    empty = tmp_path / "empty.parquet"
    pd.read_parquet(idx).iloc[:0].to_parquet(empty)
    out = tmp_path / ("cl" if kind == "classical" else "o.parquet")
    assert run_cli(["extract", kind, empty, "-o", out, *args]) == 2
    err = capsys.readouterr().err
    assert "0 rows" in err and "None" not in err and "errors.csv" not in err and "Traceback" not in err


@pytest.mark.parametrize("kind,args", [("pixel", []), ("deep", DEEP)])
def test_d4_all_sites_bad_names_a_written_error_table(tmp_path, capsys, kind, args):
    idx = tiny_index(tmp_path)
    df = pd.read_parquet(idx)
    df["Path_DNA"] = str(tmp_path / "missing.tif")
    df.to_parquet(idx)
    out = tmp_path / "o.parquet"
    assert run_cli(["extract", kind, idx, "-o", out, "--on-error", "skip", "--scaling", "image", *args]) == 2
    err = capsys.readouterr().err
    assert "see None" not in err
    errors = tmp_path / "o.errors.csv"  # one naming for every extractor
    assert errors.exists() and str(errors.name) in err and len(pd.read_csv(errors)) == 3
    man = json.loads((tmp_path / "o.manifest.json").read_text())
    assert man["errors"] == 3 and man["errors_file"] == str(errors)


@pytest.mark.parametrize("kind", ["pixel", "deep"])
def test_d5_output_without_parquet_name_is_one_line(tmp_path, capsys, kind):
    idx = tiny_index(tmp_path)
    assert run_cli(["extract", kind, idx, "-o", tmp_path / "args" / "noext", *(DEEP if kind == "deep" else [])]) == 2
    err = capsys.readouterr().err
    assert ".parquet" in err and "internal error" not in err
    assert not (tmp_path / "args" / "noext").exists()


def test_d9_summaries_count_resumed_sites(tmp_path, capsys):
    idx = tiny_index(tmp_path)
    out = tmp_path / "p.parquet"
    first = tmp_path / "first.parquet"
    pd.read_parquet(idx).iloc[:1].to_parquet(first)
    assert run_cli(["extract", "pixel", first, "-o", out, "--size", "4", "--scaling", "image"]) == 0
    capsys.readouterr()
    assert run_cli(["extract", "pixel", idx, "-o", out, "--size", "4", "--scaling", "image"]) == 0
    assert "3 sites (2 this run, 1 resumed)" in capsys.readouterr().err  # the console writes to stderr


@pytest.mark.parametrize("kind,args", [("pixel", ["--size", "4"]), ("deep", DEEP)])
def test_issue26_changed_metadata_on_resume_is_refused_with_the_columns_named(tmp_path, capsys, kind, args):
    idx = tiny_index(tmp_path)
    df = pd.read_parquet(idx)
    first = tmp_path / "first.parquet"
    df.assign(Metadata_moa="x").iloc[:2].to_parquet(first)
    out = tmp_path / "o.parquet"
    assert run_cli(["extract", kind, first, "-o", out, *args]) == 0
    capsys.readouterr()
    changed = tmp_path / "changed.parquet"
    df.assign(Metadata_moa=["x", "y", "x"]).to_parquet(changed)  # A02 re-annotated after it was written
    assert run_cli(["extract", kind, changed, "-o", out, *args]) == 2
    err = capsys.readouterr().err
    assert "Metadata_moa changed in 1 written row(s)" in err and "--overwrite" in err
    added = tmp_path / "added.parquet"
    df.assign(Metadata_moa="x", Metadata_dose=1.0).to_parquet(added)
    assert run_cli(["extract", kind, added, "-o", out, *args]) == 2
    assert "new column Metadata_dose" in capsys.readouterr().err
    same = tmp_path / "same.parquet"
    df.assign(Metadata_moa="x").to_parquet(same)
    assert run_cli(["extract", kind, same, "-o", out, *args]) == 0  # unchanged metadata resumes
    assert len(pd.read_parquet(out)) == 3
