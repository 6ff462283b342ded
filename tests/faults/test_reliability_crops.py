"""Issue 27 on real crops: single-cell stacks cut from the JUMP field of view (CellProfiler-measured plate)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import JUMP_FOV, need

FAST = dict(model="stratonet18", input_size=64, workers=0, progress=False)
CHANNELS = {"AGP": "ch2", "RNA": "ch3", "DNA": "ch5"}  # the Phenix convention of this plate


def real_crops(tmp_path, n: int = 4, side: int = 96, dtype=np.float32) -> pd.DataFrame:
    """``n`` crops around real nuclei of the JUMP field, saved as ``(C, H, W)`` stacks, and their index."""
    from stratonet.extract.deep.cells import otsu_centers

    need(JUMP_FOV)
    planes = [tifffile.imread(JUMP_FOV / "images" / "orig" / f"r01c01f01p01-{ch}sk1fk1fl1.tiff")
              for ch in CHANNELS.values()]
    field = np.stack(planes)
    half = side // 2
    centres = [c for c in otsu_centers(field[2].astype(np.float32))
               if half <= c[0] < field.shape[1] - half and half <= c[1] < field.shape[2] - half][:n]
    rows = []
    for k, (y, x) in enumerate(centres, start=1):
        y, x = int(y), int(x)
        crop = field[:, y - half: y + half, x - half: x + half].astype(dtype)
        path = tmp_path / f"crop_{k}.npy"
        np.save(path, crop)
        rows.append({"Metadata_Plate": "BR00117006", "Metadata_Well": "A01", "Metadata_Site": 1,
                     "Metadata_ObjectNumber": k, "Path_Stack": str(path), "Stack_Channels": "|".join(CHANNELS)})
    return pd.DataFrame(rows)


def test_d10_center_object_plate_scaling_keeps_crops_distinct(tmp_path):
    """D10: --center-object at the default plate scaling gave identical rows for every crop (the segmentation
    rescaled the raw float32 array in place, so the plate bounds clipped every pixel to 0)."""
    from stratonet.runtime import extract_deep

    idx = real_crops(tmp_path)
    out = tmp_path / "deep.parquet"
    extract_deep(idx, out, center_object=True, **FAST)
    feats = pd.read_parquet(out).filter(regex="^(DNA|RNA|AGP)_")
    assert len(feats) == len(idx)
    assert feats.drop_duplicates().shape[0] == len(idx), "crops that differ must give rows that differ"
    assert feats.std(axis=0).max() > 0


def test_d10_rescale_never_mutates_its_input():
    """The principle behind D10: a step does not change an array another step reads."""
    from stratonet.images.transforms import rescale_to_unit

    raw = np.linspace(0, 5000, 4 * 16 * 16, dtype=np.float32).reshape(4, 16, 16)
    before = raw.copy()
    rescale_to_unit(raw)
    rescale_to_unit(raw, bounds=np.array([[0, 10.0]] * 4, dtype=np.float32))
    np.testing.assert_array_equal(raw, before)


def test_d11_a_crop_without_a_centre_cell_is_named_by_its_object_number(tmp_path, capsys):
    """D11: the error and the errors table named only the site, which all crops of a field share."""
    from conftest import run_cli

    idx = real_crops(tmp_path)
    blank = np.load(idx.loc[2, "Path_Stack"])
    rng = np.random.default_rng(0)
    blank = rng.normal(100.0, 1.0, blank.shape).astype(np.float32)  # background and a neighbour in a corner
    yy, xx = np.mgrid[: blank.shape[1], : blank.shape[2]]
    blank[:, (yy - 12) ** 2 + (xx - 12) ** 2 < 100] = 5000.0
    np.save(idx.loc[2, "Path_Stack"], blank)
    path = tmp_path / "crops.parquet"
    idx.to_parquet(path)
    args = ["extract", "deep", path, "--center-object", "--model", "stratonet18", "--input-size", "64",
            "--workers", "0"]
    assert run_cli([*args, "-o", tmp_path / "d.parquet"]) == 2
    err = capsys.readouterr().err
    assert "BR00117006/A01/1 object 3" in err and "Traceback" not in err
    assert run_cli([*args, "-o", tmp_path / "d.parquet", "--on-error", "skip"]) == 0
    errors = pd.read_csv(tmp_path / "d.errors.csv")
    assert errors["Metadata_ObjectNumber"].tolist() == [3] and errors["site"].tolist() == ["BR00117006/A01/1 object 3"]
    assert sorted(pd.read_parquet(tmp_path / "d.parquet")["Metadata_ObjectNumber"]) == [1, 2, 4]


def test_d12_crop_stacks_with_a_repeated_key_are_told_about_the_object_number(tmp_path, capsys):
    """D12: the suggested --allow-duplicates led to a refusal at extraction, and ObjectNumber=cell_index was
    lower-cased into an unrecognised Metadata_objectnumber."""
    from conftest import run_cli

    idx = real_crops(tmp_path)
    table = pd.DataFrame({"FileName": [p.split("/")[-1] for p in idx["Path_Stack"]], "Metadata_Plate": "BR00117006",
                          "Metadata_Well": "A01", "Metadata_Site": 1, "cell_index": [10, 11, 12, 13]})
    table.to_csv(tmp_path / "index.csv", index=False)
    base = ["index", tmp_path, "--layout", "arrays", "--channels", "AGP,RNA,DNA"]
    assert run_cli([*base, "-o", tmp_path / "i1.parquet"]) == 2
    err = capsys.readouterr().err
    assert "--columns ObjectNumber=" in err and "extraction refuses" in err
    assert run_cli([*base, "-o", tmp_path / "i2.parquet", "--columns", "ObjectNumber=cell_index"]) == 0
    df = pd.read_parquet(tmp_path / "i2.parquet")
    assert df["Metadata_ObjectNumber"].tolist() == [10, 11, 12, 13]
    assert run_cli(["extract", "pixel", tmp_path / "i2.parquet", "-o", tmp_path / "p.parquet", "--size", "4",
                    "--scaling", "image"]) == 0
    assert len(pd.read_parquet(tmp_path / "p.parquet")) == 4


def test_d13_filled_cell_masks_give_cells_only_where_a_nucleus_is(tmp_path):
    """D13, on CellProfiler's own objects of the JUMP field (filled from its outline PNGs), cut into 5 windows and
    rendered as the filled 0/255 masks CellProfiler writes: mask pixels no nucleus reaches (cells cut by the
    window edge away from their nucleus) became cells of their own, down to 1 px; every nucleus component was
    declumped, adding nuclei where plain components matched."""
    from PIL import Image
    from scipy import ndimage as ndi

    from stratonet.extract.classical.labels import read_labels

    need(JUMP_FOV)
    outlines = JUMP_FOV / "images" / "outlines"
    nuclei = read_labels(outlines / "r01c01f01p01-ch5sk1fk1fl1_nuclei_outlines.png")
    cells = read_labels(outlines / "r01c01f01p01-ch3sk1fk1fl1_cell_outlines.png", seeds=nuclei)
    n_nuc_extra = 0
    for k, (y, x) in enumerate([(0, 0), (300, 200), (500, 600), (800, 100), (700, 800)]):
        win = (slice(y, y + 256), slice(x, x + 256))
        for name, lab in (("nuc", nuclei[win]), ("cell", cells[win])):
            Image.fromarray(((lab > 0) * 255).astype(np.uint8)).save(tmp_path / f"{name}{k}.png")
        got_nuc = read_labels(tmp_path / f"nuc{k}.png")
        got_cells = read_labels(tmp_path / f"cell{k}.png", seeds=got_nuc)
        ids = np.unique(got_cells)[1:]
        with_nucleus = {int(c) for c in np.unique(got_cells[(got_cells > 0) & (got_nuc > 0)])}
        assert set(ids.tolist()) == with_nucleus, f"window {k}: cells without a nucleus"
        n_nuc_extra += got_nuc.max() - ndi.label(nuclei[win] > 0, structure=np.ones((3, 3)))[1]
        # a cell is never bigger than CellProfiler's mask allows, and fragments without a nucleus are background
        assert not ((got_cells > 0) & (cells[win] == 0)).any()
    assert 0 <= n_nuc_extra <= 2  # declumping only splits clumps of touching nuclei
