"""A finished deep run on whole fields at their native size resumes with the same settings (it was refused:
the early settings check compared the model's input size with the stored "native HxW")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from conftest import run_cli

NATIVE = ["--weights", "none", "--model", "stratonet18", "--seed", "0", "--batch-size", "2", "--workers", "0",
          "--precision", "fp32"]


def native_index(tmp_path: Path, n: int = 2, size: int = 232) -> Path:
    """Sites a little larger than the model's input (224), so whole mode keeps them at their native size."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(n):
        row = {"Metadata_Plate": "P1", "Metadata_Well": f"A0{s + 1}", "Metadata_Site": 1}
        p = tmp_path / "img" / f"A0{s + 1}_DNA.tif"
        p.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(p, rng.integers(0, 4000, (size, size)).astype(np.uint16))
        row["Path_DNA"] = str(p)
        rows.append(row)
    idx = tmp_path / "index.parquet"
    pd.DataFrame(rows).to_parquet(idx)
    return idx


def test_native_size_run_resumes_with_the_same_settings(tmp_path, capsys):
    idx = native_index(tmp_path)
    out = tmp_path / "deep.parquet"
    assert run_cli(["extract", "deep", idx, "-o", out, *NATIVE]) == 0
    first = pd.read_parquet(out)
    capsys.readouterr()
    assert run_cli(["extract", "deep", idx, "-o", out, *NATIVE]) == 0, capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_parquet(out), first)
