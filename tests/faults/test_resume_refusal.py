"""A refused resume (other settings, no --overwrite) leaves the existing run's files as they were (issue 15)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from conftest import run_cli


def _index(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for s in range(3):
        row = {"Metadata_Plate": "P1", "Metadata_Well": f"A0{s + 1}", "Metadata_Site": 1}
        for ch in ("DNA", "ER"):
            p = tmp_path / "img" / f"A0{s + 1}_{ch}.tif"
            p.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(p, rng.integers(0, 4000, (64, 64), dtype=np.uint16))
            row[f"Path_{ch}"] = str(p)
        rows.append(row)
    idx = tmp_path / "index.parquet"
    pd.DataFrame(rows).to_parquet(idx)
    return idx


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith((".log", ".lock"))}


def _refused(argv, capsys) -> str:
    assert run_cli(argv) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--overwrite" in err
    return err


def test_refused_pixel_resume_keeps_config_and_scaling(tmp_path, capsys):
    idx = _index(tmp_path)
    out = tmp_path / "run" / "pixel.parquet"
    assert run_cli(["extract", "pixel", idx, "-o", out, "--size", "8"]) == 0
    before = _snapshot(out.parent)
    assert "extract_pixel.config.yaml" in before and "pixel.scaling.json" in before
    # another size: refused, and nothing of the first run is rewritten (its config said --size 8 before the fix
    # was overwritten with --size 4 although no row was written)
    assert "size" in _refused(["extract", "pixel", idx, "-o", out, "--size", "4"], capsys)
    assert _snapshot(out.parent) == before
    # another plate-scaling sample: refused before the stored percentiles are re-estimated and rewritten
    assert "scaling" in _refused(["extract", "pixel", idx, "-o", out, "--size", "8", "--scaling-sites", "2"], capsys)
    assert _snapshot(out.parent) == before
    assert "scaling" in _refused(["extract", "pixel", idx, "-o", out, "--size", "8", "--scaling", "image"], capsys)
    assert _snapshot(out.parent) == before
    # the same settings resume, and --overwrite starts over (each writes its config)
    assert run_cli(["extract", "pixel", idx, "-o", out, "--size", "8"]) == 0
    assert run_cli(["extract", "pixel", idx, "-o", out, "--size", "4", "--overwrite"]) == 0
    assert "size: 4" in (out.parent / "extract_pixel.config.yaml").read_text()


def test_refused_deep_resume_keeps_config_and_scaling(tmp_path, capsys):
    idx = _index(tmp_path)
    out = tmp_path / "run" / "deep.parquet"
    common = ["extract", "deep", idx, "-o", out, "--model", "stratonet18"]
    assert run_cli([*common, "--input-size", "64"]) == 0
    before = _snapshot(out.parent)
    assert "extract_deep.config.yaml" in before and "deep.scaling.json" in before
    _refused([*common, "--input-size", "32"], capsys)
    assert _snapshot(out.parent) == before
    _refused([*common, "--input-size", "64", "--scaling-sites", "2"], capsys)
    assert _snapshot(out.parent) == before


def test_refused_classical_resume_keeps_config(tmp_path, capsys):
    idx = _index(tmp_path)
    out = tmp_path / "classical"
    assert run_cli(["extract", "classical", idx, "-o", out, "--features", "areashape", "--cell-channels", "ER"]) == 0
    before = _snapshot(out)
    assert "extract_classical.config.yaml" in before
    _refused(["extract", "classical", idx, "-o", out, "--features", "areashape,intensity", "--cell-channels", "ER"],
             capsys)
    assert _snapshot(out) == before
