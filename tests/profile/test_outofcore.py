"""Out-of-core profiling: streamed aggregation over Parquet shards equals the in-memory path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from stratonet.profile import aggregate
from stratonet.profile.outofcore import aggregate_parquet
from stratonet.core.tables import read_table


def _cells(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    wells = [f"{r}{c:02d}" for r in "AB" for c in range(1, 9)]
    df = pd.DataFrame({
        "Metadata_Plate": rng.choice(["P1", "P2"], n),
        "Metadata_Well": rng.choice(wells, n),
        "Metadata_Site": rng.integers(1, 4, n),
        "Metadata_ObjectNumber": np.arange(n),
    })
    df["Metadata_pert_iname"] = np.where(df["Metadata_Well"].str.endswith(("01", "02")), "DMSO", "cpd" + df["Metadata_Well"])
    df["Metadata_control_type"] = np.where(df["Metadata_pert_iname"] == "DMSO", "negcon", "trt")
    for j in range(7):
        df[f"Cells_f{j}"] = (rng.normal(size=n) * (j + 1) + df["Metadata_Well"].str[-1].astype(int)).astype(np.float32)
    df["Nuclei_count_like"] = rng.integers(0, 9, n)  # an integer feature
    df.loc[5, "Cells_f0"] = np.nan  # missing values are skipped by both paths
    return df


def _shards(df, folder, parts=3):
    folder.mkdir()
    for i, chunk in enumerate(np.array_split(np.arange(len(df)), parts)):
        df.iloc[chunk].to_parquet(folder / f"part-{i:05d}.parquet", index=False)
    return folder


@pytest.mark.parametrize("operation", ["median", "mean"])
@pytest.mark.parametrize("level", ["site", "well"])
def test_streamed_aggregation_equals_in_memory(tmp_path, operation, level):
    df = _cells()
    keys = ["Metadata_Plate", "Metadata_Well"] + (["Metadata_Site"] if level == "site" else [])
    want = aggregate(df, level, operation=operation)
    # block_bytes=1 forces one feature column per median pass: the block logic is exercised
    got = aggregate_parquet(_shards(df, tmp_path / "cells"), keys, operation=operation, block_bytes=1)
    assert list(got.columns) == list(want.columns)
    assert "Metadata_ObjectNumber" not in got and "Metadata_pert_iname" in got  # constant metadata kept
    pd.testing.assert_frame_equal(got, want, check_dtype=True, rtol=1e-6)


def test_profile_cli_out_of_core_equals_in_memory(tmp_path):
    src = _shards(_cells(1), tmp_path / "cells")
    assert run_cli(["profile", src, "-o", tmp_path / "ooc.parquet", "--out-of-core", "--select", "variance_threshold"]) == 0
    single = tmp_path / "cells.parquet"
    _cells(1).to_parquet(single, index=False)
    assert run_cli(["profile", single, "-o", tmp_path / "mem.parquet", "--in-memory", "--select", "variance_threshold"]) == 0
    a, b = read_table(tmp_path / "ooc.parquet"), read_table(tmp_path / "mem.parquet")
    pd.testing.assert_frame_equal(a, b, rtol=1e-5, atol=1e-6)
    assert len(a) == 32


def test_out_of_core_needs_an_aggregation_level(tmp_path):
    src = _shards(_cells(), tmp_path / "cells")
    assert run_cli(["profile", src, "-o", tmp_path / "x.parquet", "--out-of-core", "--aggregate", "none"]) != 0
