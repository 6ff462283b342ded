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
    from stratonet.images.io import load_index_row
    from stratonet.core.tables import read_table

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


def test_label_file_patterns_in_index_and_extract(tmp_path, jump_fov, pediatric_fov, capsys):
    from PIL import Image

    from stratonet.core.tables import read_table

    imgs = jump_fov / "images"
    out = tmp_path / "index.parquet"
    assert run_cli(["index", imgs / "orig", "-o", out, "--no-check", "--labels-dir", imgs / "outlines",
                    "--nuclei-labels", "{stem_DNA}_nuclei_outlines.png",
                    "--cells-labels", "{stem_RNA}_cell_outlines.png"]) == 0
    assert "1 site with nuclei labels" in " ".join(capsys.readouterr().err.split())
    row = read_table(out).iloc[0]
    assert row["Labels_Nuclei"].endswith("r01c01f01p01-ch5sk1fk1fl1_nuclei_outlines.png")
    assert row["Labels_Cells"].endswith("r01c01f01p01-ch3sk1fk1fl1_cell_outlines.png")
    # CellProfiler's names on the pediatric FOV: NucleiOutlines_<plate>_<well>_<site>.tiff.
    ped = pediatric_fov / "images"
    out2 = tmp_path / "ped.parquet"
    assert run_cli(["index", ped / "orig", "-o", out2, "--no-check", "--plate", "BR00143976", "--labels-dir",
                    ped / "outlines", "--nuclei-labels", "NucleiOutlines_{plate}_{well}_{site}.tiff",
                    "--cells-labels", "CellsOutlines_{plate}_{well}_{site}.tiff"]) == 0
    row = read_table(out2).iloc[0]
    assert row["Labels_Nuclei"].endswith("NucleiOutlines_BR00143976_C03_3.tiff")
    assert row["Labels_Cells"].endswith("CellsOutlines_BR00143976_C03_3.tiff")
    # extract classical takes the same patterns with --labels-dir.
    from test_correctness_classical import _cp_objects
    from test_classical import CROP, _crop_index

    nuclei, _ = _cp_objects(jump_fov)
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(((nuclei[CROP] > 0) * 255).astype(np.uint8)).save(masks / "NucleiMask_P1_A01_1.png")
    idx = _crop_index(tmp_path, jump_fov)
    assert run_cli(["extract", "classical", idx, "-o", tmp_path / "cl", "--features", "areashape",
                    "--labels-dir", masks, "--nuclei-labels", "NucleiMask_{plate}_{well}_{site}.png"]) == 0
    site = pd.read_parquet(tmp_path / "cl" / "site.parquet")
    assert site["Count_Nuclei"].iloc[0] >= 0.8 * (len(np.unique(nuclei[CROP])) - 1)
    # A placeholder the row lacks is a one-line error.
    assert run_cli(["extract", "classical", idx, "-o", tmp_path / "cl2", "--features", "areashape",
                    "--labels-dir", masks, "--nuclei-labels", "{barcode}.png"]) != 0
    assert "barcode" in capsys.readouterr().err
