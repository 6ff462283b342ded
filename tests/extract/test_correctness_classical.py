"""Issue 10, classical path: filled binary masks, sites with 0 or 1 object, infinite values, honest notes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from conftest import run_cli
from test_classical import CROP, _crop_index

OUTLINES = "images/outlines/r01c01f01p01-ch{}sk1fk1fl1_{}_outlines.png"


def _cp_objects(jump_fov):
    """CellProfiler's own nuclei and cells of the JUMP FOV, filled from its outline PNGs."""
    from stratonet.extract.classical.labels import read_labels

    nuclei = read_labels(jump_fov / OUTLINES.format(5, "nuclei"))
    cells = read_labels(jump_fov / OUTLINES.format(3, "cell"), seeds=nuclei)
    return nuclei, cells


def _save_mask(path, labels):
    """A CellProfiler-style binary mask: filled objects 255, background 0 (touching objects merge)."""
    Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(path)


def test_filled_binary_masks_are_labelled_not_taken_for_outlines(tmp_path, jump_fov):
    from stratonet.extract.classical.agreement import match_objects
    from stratonet.extract.classical.labels import is_filled_mask, read_labels

    nuclei, cells = _cp_objects(jump_fov)
    assert nuclei.max() == 188 and cells.max() == 188
    _save_mask(tmp_path / "nuc.png", nuclei)
    _save_mask(tmp_path / "cell.png", cells)
    assert not is_filled_mask(np.asarray(Image.open(jump_fov / OUTLINES.format(5, "nuclei"))))
    assert is_filled_mask(np.asarray(Image.open(tmp_path / "nuc.png")))
    got_nuc = read_labels(tmp_path / "nuc.png")
    got_cells = read_labels(tmp_path / "cell.png", seeds=got_nuc)
    # The binary cell mask has only a few components (touching cells merge); seeded splitting restores them.
    from scipy import ndimage as ndi

    assert ndi.label(cells > 0)[1] < 20
    assert match_objects(got_nuc, nuclei, 0.5)["f1"] >= 0.95
    assert match_objects(got_cells, cells, 0.5)["f1"] >= 0.88


def test_labels_dir_with_filled_masks_gives_objects(tmp_path, jump_fov):
    nuclei, cells = _cp_objects(jump_fov)
    idx = _crop_index(tmp_path, jump_fov)
    masks = tmp_path / "masks"
    masks.mkdir()
    _save_mask(masks / "P1_A01_1_Nuclei.png", nuclei[CROP])
    _save_mask(masks / "P1_A01_1_Cells.png", cells[CROP])
    out = tmp_path / "out"
    assert run_cli(["extract", "classical", idx, "-o", out, "--features", "areashape", "--labels-dir", masks]) == 0
    site = pd.read_parquet(out / "site.parquet")
    n_truth = len(np.unique(nuclei[CROP])) - 1
    assert site["Count_Nuclei"].iloc[0] >= 0.8 * n_truth > 5
    assert site["Count_Cells"].iloc[0] >= 0.8 * n_truth
    man = json.loads((out / "site.manifest.json").read_text())
    assert man["n_sites_empty"] == 0


def _labels_dir(tmp_path, nuclei, cells):
    d = tmp_path / "labels"
    d.mkdir(exist_ok=True)
    tifffile.imwrite(d / "P1_A01_1_nuclei.tiff", nuclei.astype(np.uint16))
    tifffile.imwrite(d / "P1_A01_1_cells.tiff", cells.astype(np.uint16))
    return d


def test_site_with_zero_objects_is_reported_and_on_empty_error_applies(tmp_path, jump_fov, capsys):
    idx = _crop_index(tmp_path, jump_fov)
    empty = np.zeros((CROP[0].stop - CROP[0].start,) * 2, np.uint16)
    d = _labels_dir(tmp_path, empty, empty)
    out = tmp_path / "out"
    assert run_cli(["extract", "classical", idx, "-o", out, "--features", "all", "--texture-scales", "3",
                    "--granularity-spectrum", "2", "--labels-dir", d]) == 0
    err = capsys.readouterr().err
    assert "1 site with 0 objects" in err and "P1/A01/1" in err
    man = json.loads((out / "site.manifest.json").read_text())
    assert man["n_sites_empty"] == 1 and man["empty_sites"] == ["P1/A01/1"]
    assert pd.read_parquet(out / "site.parquet")["Count_Cells"].iloc[0] == 0
    # --on-empty error makes it a site error: fail by default, recorded with --on-error skip.
    assert run_cli(["extract", "classical", idx, "-o", tmp_path / "o2", "--features", "areashape",
                    "--labels-dir", d, "--on-empty", "error"]) != 0
    assert "0 objects" in capsys.readouterr().err
    assert run_cli(["extract", "classical", idx, "-o", tmp_path / "o3", "--features", "areashape",
                    "--labels-dir", d, "--on-empty", "error", "--on-error", "skip"]) == 2  # no site left
    assert "0 objects" in (tmp_path / "o3" / "errors.csv").read_text()


def test_all_feature_groups_on_a_crop_with_one_object(tmp_path, jump_fov):
    nuclei, cells = _cp_objects(jump_fov)
    nuc, cel = nuclei[CROP], cells[CROP]
    keep = int(np.bincount(nuc.ravel())[1:].argmax()) + 1  # the crop's largest nucleus and its cell
    one_nuc = np.where(nuc == keep, 1, 0)
    one_cell = np.where(cel == np.bincount(cel[nuc == keep]).argmax(), 1, 0)
    d = _labels_dir(tmp_path, one_nuc, one_cell)
    idx = _crop_index(tmp_path, jump_fov)
    out = tmp_path / "out"
    assert run_cli(["extract", "classical", idx, "-o", out, "--features", "all", "--texture-scales", "3",
                    "--granularity-spectrum", "2", "--labels-dir", d]) == 0
    sc = pd.read_parquet(out / "single_cell.parquet")
    assert len(sc) == 1
    assert sc["Nuclei_Neighbors_NumberOfNeighbors_1"].iloc[0] == 0
    assert sc["Cells_Neighbors_PercentTouching_Adjacent"].iloc[0] == 0


def test_neighbour_columns_of_one_object_match_those_of_many():
    from stratonet.extract.classical.measure import measure_neighbors

    two = np.zeros((40, 40), np.int32)
    two[5:15, 5:15] = 1
    two[20:30, 20:30] = 2
    one = np.where(two == 1, 1, 0)
    for dist in (None, 1):
        assert list(measure_neighbors(one, "Nuclei", dist).columns) == list(measure_neighbors(two, "Nuclei", dist).columns)


def test_infinite_values_become_nan_with_a_count():
    from stratonet.extract.classical.run import nonfinite_to_nan

    df = pd.DataFrame({"Cytoplasm_AreaShape_FormFactor": [0.5, np.inf, -np.inf], "ObjectNumber": [1, 2, 3]})
    out, counts = nonfinite_to_nan(df)
    assert counts == {"Cytoplasm_AreaShape_FormFactor": 2}
    assert out["Cytoplasm_AreaShape_FormFactor"].isna().sum() == 2


def test_notes_say_what_happened(tmp_path, jump_fov, capsys):
    # The JUMP FOV has AGP but no ER: the note names ER as missing even though AGP is there.
    idx = _crop_index(tmp_path, jump_fov)
    assert run_cli(["extract", "classical", idx, "-o", tmp_path / "a", "--features", "areashape"]) == 0
    err = capsys.readouterr().err
    assert "cell channel(s) ER of --cell-channels AGP,ER absent" in err.replace("\n", " ")
    assert "1 site," in err and "1 sites" not in err
    # With cell labels from files, no cells are grown: no cell-channel note.
    nuclei, cells = _cp_objects(jump_fov)
    d = _labels_dir(tmp_path, nuclei[CROP], cells[CROP])
    assert run_cli(["extract", "classical", idx, "-o", tmp_path / "b", "--features", "areashape",
                    "--labels-dir", d]) == 0
    err = capsys.readouterr().err
    assert "absent" not in err and "labels loaded from files" in err
