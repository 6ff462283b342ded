"""Issue 10, real inputs: array stacks channels-last / 2-D / with a column mapping, and the index summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import tifffile

from conftest import run_cli


def _stacks(tmp_path, shape_of, channels="DNA,RNA,AGP", columns=None):
    d = tmp_path / "crops"
    d.mkdir()
    rng = np.random.default_rng(0)
    n = len(channels.split(","))
    rows = []
    for i in range(3):
        chw = rng.integers(0, 4000, size=(n, 24, 20)).astype(np.uint16)
        arr = shape_of(chw)
        np.save(d / f"cell{i}.npy", arr)
        rows.append({"Image_Metadata_Plate_DAPI": "BR1", "well": "B03", "crop_file": f"cell{i}.npy",
                     "ObjectNumber": i + 1, "_truth": chw})
    pd.DataFrame(rows).drop(columns="_truth").to_csv(d / "index.csv", index=False)
    return d, rows


def test_arrays_channels_last_two_d_and_column_mapping(tmp_path, capsys):
    from stratonet.io import load_index_row
    from stratonet.tables import read_table

    d, rows = _stacks(tmp_path, lambda chw: np.moveaxis(chw, 0, -1))  # (H, W, C) as many tools save them
    out = tmp_path / "index.parquet"
    cols = "plate=Image_Metadata_Plate_DAPI,well=well,file=crop_file"
    assert run_cli(["index", d, "--layout", "arrays", "--channels", "DNA,RNA,AGP", "--columns", cols,
                    "-o", out]) == 0
    err = capsys.readouterr().err
    assert "indexed 3 crops" in err and "channels found: DNA, RNA, AGP" in err
    idx = read_table(out)
    assert set(idx["Metadata_Plate"]) == {"BR1"} and set(idx["Metadata_Well"]) == {"B03"}
    assert list(idx["Metadata_ObjectNumber"]) == [1, 2, 3]
    img = load_index_row(idx.iloc[1], ["AGP", "DNA"], illum=False)
    assert img.shape == (2, 24, 20) and np.array_equal(img[0], rows[1]["_truth"][2])
    # 2-D single-channel files.
    (tmp_path / "x").mkdir()
    d2, rows2 = _stacks(tmp_path / "x", lambda chw: chw[0], channels="DNA")
    out2 = tmp_path / "index2.parquet"
    assert run_cli(["index", d2, "--layout", "arrays", "--channels", "DNA", "--columns", cols, "-o", out2]) == 0
    img = load_index_row(read_table(out2).iloc[0], ["DNA"], illum=False)
    assert img.shape == (1, 24, 20) and np.array_equal(img[0], rows2[0]["_truth"][0])
    # A mapping to a column that is not there is a one-line error naming it.
    assert run_cli(["index", d, "--layout", "arrays", "--channels", "DNA,RNA,AGP", "--columns", "plate=Plate_X",
                    "-o", tmp_path / "bad.parquet"]) != 0
    assert "Plate_X" in capsys.readouterr().err


def test_index_summary_names_found_and_missing_channels(tmp_path, jump_fov, capsys):
    out = tmp_path / "index.parquet"
    assert run_cli(["index", jump_fov / "images" / "orig", "-o", out, "--no-check"]) == 0
    err = " ".join(capsys.readouterr().err.split())  # the terminal's line breaks do not matter here
    assert "indexed 1 site x 3 channels" in err and "1 sites" not in err
    assert "channels found: AGP, RNA, DNA" in err
    assert "not found: Mito, ER" in err
