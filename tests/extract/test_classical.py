"""Classical features: names, parent links, aggregation, external labels, errors, agreement with CellProfiler."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_cli

CROP = (slice(300, 556), slice(300, 556))  # 256 x 256 px of the JUMP FOV, ~15 cells
JUMP_CH = {"AGP": "ch2", "RNA": "ch3", "DNA": "ch5"}


def _jump_crop(jump_fov):
    from stratonet.extract.classical.run import scale_to_unit

    d = jump_fov / "images" / "orig"
    raw = np.stack([tifffile.imread(d / f"r01c01f01p01-{c}sk1fk1fl1.tiff") for c in JUMP_CH.values()])
    return scale_to_unit(raw[:, CROP[0], CROP[1]].astype(np.float32)), raw[:, CROP[0], CROP[1]]


def _crop_index(tmp_path, jump_fov, with_dna=True):
    _, raw = _jump_crop(jump_fov)
    row = {"Metadata_Plate": "P1", "Metadata_Well": "A01", "Metadata_Site": 1, "Metadata_pert_iname": "DMSO"}
    for ch, img in zip(JUMP_CH, raw):
        if ch == "DNA" and not with_dna:
            continue
        p = tmp_path / f"{ch}.tiff"
        tifffile.imwrite(p, img)
        row[f"Path_{ch}"] = str(p)
    idx = tmp_path / "index.parquet"
    pd.DataFrame([row]).to_parquet(idx)
    return idx


def test_feature_names_follow_cellprofiler(jump_fov):
    from stratonet.extract.classical.measure import MeasureParams, measure_site
    from stratonet.extract.classical.segment import segment_site

    img, _ = _jump_crop(jump_fov)
    chans = list(JUMP_CH)
    masks = segment_site(img[2], img[0])
    p = MeasureParams(texture_scales=(3,), granularity_spectrum=4)
    df = measure_site(img, chans, masks, None, p)
    assert len(df) == int(masks["Cells"].max()) > 5
    for name in [
        "Nuclei_AreaShape_Area", "Cells_AreaShape_FormFactor", "Cells_Intensity_MeanIntensity_DNA",
        "Cytoplasm_Intensity_IntegratedIntensity_AGP", "Nuclei_Texture_Contrast_DNA_3_00_256",
        "Cells_Texture_InfoMeas2_RNA_3_03_256", "Cytoplasm_Granularity_1_AGP", "Nuclei_Granularity_4_DNA",
        "Cells_RadialDistribution_FracAtD_AGP_1of4", "Nuclei_RadialDistribution_RadialCV_DNA_4of4",
        "Cells_Correlation_Correlation_AGP_DNA", "Cells_Correlation_Manders_DNA_AGP",
        "Nuclei_Neighbors_NumberOfNeighbors_1", "Cells_Neighbors_PercentTouching_Adjacent",
        "Nuclei_Location_Center_X", "Cells_Location_CenterMassIntensity_X_DNA",
    ]:
        assert name in df.columns, name
    # Every AreaShape / Intensity / Texture / Granularity / Radial name we share with CellProfiler's real JUMP
    # output is spelled exactly as CellProfiler spells it.
    real = set(pd.read_parquet(jump_fov / "BR00117006_shrunken.parquet").columns)
    ours = {c for c in df.columns if c.startswith(("Nuclei_", "Cells_", "Cytoplasm_"))}
    for group in ["_AreaShape_Area", "_Intensity_MeanIntensity_DNA", "_Texture_Contrast_DNA_3_00_256",
                  "_Granularity_1_DNA", "_RadialDistribution_MeanFrac_DNA_2of4", "_Correlation_Correlation_AGP_DNA"]:
        for comp in ("Nuclei", "Cells"):
            assert comp + group in real and comp + group in ours, comp + group
    assert len(ours & real) > 300


def test_parent_child_links():
    from stratonet.extract.classical.measure import measure_site

    # Two cells, nuclei numbered in the opposite order: links must follow overlap, not numbers.
    cells = np.zeros((80, 80), np.int32)
    cells[5:40, 5:40] = 1
    cells[45:78, 40:78] = 2
    nuclei = np.zeros_like(cells)
    nuclei[15:28, 15:28] = 2
    nuclei[55:68, 50:65] = 1
    from stratonet.extract.classical.segment import cytoplasm

    masks = {"Nuclei": nuclei, "Cells": cells, "Cytoplasm": cytoplasm(cells, nuclei)}
    img = np.random.default_rng(0).random((1, 80, 80)).astype(np.float32)
    df = measure_site(img, ["DNA"], masks, ["areashape"])
    by = df.set_index("ObjectNumber")
    assert by.loc[1, "Cells_Parent_Nuclei"] == 2 and by.loc[2, "Cells_Parent_Nuclei"] == 1
    assert (by["Cytoplasm_Parent_Cells"] == by.index).all()
    assert by.loc[1, "Nuclei_AreaShape_Area"] == 13 * 13
    assert by.loc[1, "Cytoplasm_AreaShape_Area"] == 35 * 35 - 13 * 13
    assert by.loc[2, "Nuclei_AreaShape_Area"] == 13 * 15


def test_segmented_cells_contain_their_nucleus(jump_fov):
    from stratonet.extract.classical.relate import parent_of
    from stratonet.extract.classical.segment import segment_site

    img, _ = _jump_crop(jump_fov)
    m = segment_site(img[2], img[0])
    assert (m["Cells"][m["Nuclei"] > 0] == m["Nuclei"][m["Nuclei"] > 0]).all()
    assert (parent_of(m["Cells"], m["Nuclei"]) == np.arange(1, m["Cells"].max() + 1)).all()
    assert not (m["Cytoplasm"][m["Nuclei"] > 0]).any()


def test_aggregation_median_mean_and_counts():
    from stratonet.extract.classical.aggregate import aggregate_cells

    cells = pd.DataFrame({
        "Metadata_Plate": "P", "Metadata_Well": ["A01"] * 3 + ["A02"] * 2, "Metadata_Site": 1,
        "Metadata_moa": ["x"] * 3 + ["y"] * 2, "ObjectNumber": [1, 2, 3, 1, 2],
        "Cells_Parent_Nuclei": [1, 2, 3, 1, 2], "Nuclei_Location_Center_X": [1.0, 2, 3, 4, 5],
        "Cells_AreaShape_Area": [10.0, 20, 90, 5, 7],
    })
    counts = pd.DataFrame({"Metadata_Plate": "P", "Metadata_Well": ["A01", "A02", "A03"], "Metadata_Site": 1,
                           "Count_Nuclei": [3, 2, 0], "Count_Cells": [3, 2, 0]})
    by = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
    med = aggregate_cells(cells, by, "median", counts).set_index("Metadata_Well")
    mean = aggregate_cells(cells, by, "mean", counts).set_index("Metadata_Well")
    assert med.loc["A01", "Cells_AreaShape_Area"] == 20 and mean.loc["A01", "Cells_AreaShape_Area"] == 40
    assert med.loc["A02", "Cells_AreaShape_Area"] == 6
    assert med.loc["A01", "Metadata_moa"] == "x"
    assert med.loc["A03", "Count_Nuclei"] == 0 and np.isnan(med.loc["A03", "Cells_AreaShape_Area"])
    for ident in ("ObjectNumber", "Cells_Parent_Nuclei", "Nuclei_Location_Center_X"):
        assert ident not in med.columns


def test_outlines_and_label_files_load_back(tmp_path):
    from skimage.segmentation import find_boundaries

    from stratonet.extract.classical.agreement import match_objects
    from stratonet.extract.classical.labels import read_labels

    yy, xx = np.mgrid[:120, :120]
    truth = np.zeros((120, 120), np.int32)
    for i, (cy, cx, r) in enumerate([(30, 30, 14), (30, 57, 13), (85, 70, 20)], start=1):  # 1 and 2 touch
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = i
    outline = find_boundaries(truth, mode="inner").astype(np.uint8) * 255
    from PIL import Image

    Image.fromarray(outline).save(tmp_path / "outlines.png")
    rgb = np.zeros((120, 120, 3), np.uint16)
    rgb[..., 1] = outline.astype(np.uint16) * 128
    tifffile.imwrite(tmp_path / "outlines_rgb.tiff", rgb)
    tifffile.imwrite(tmp_path / "x_masks.tif", truth)
    for f in ("outlines.png", "outlines_rgb.tiff", "x_masks.tif"):
        got = read_labels(tmp_path / f)
        m = match_objects(got, truth, 0.9)
        assert m["n_pred"] == 3 and m["matched"] == 3, f


def test_cli_end_to_end_resume_and_external_labels(tmp_path, jump_fov):
    idx = _crop_index(tmp_path, jump_fov)
    out = tmp_path / "out"
    args = ["extract", "classical", idx, "-o", out, "--features", "areashape,intensity,neighbors", "--save-masks"]
    assert run_cli(args) == 0
    sc = pd.read_parquet(out / "single_cell.parquet")
    site = pd.read_parquet(out / "site.parquet")
    well = pd.read_parquet(out / "well.parquet")
    assert {"Metadata_pert_iname", "ObjectNumber", "Cells_Parent_Nuclei", "Nuclei_Location_Center_X"} <= set(sc.columns)
    assert site["Count_Cells"].iloc[0] == len(sc) and site["Count_Nuclei"].iloc[0] >= len(sc)
    assert well["Count_Cells"].iloc[0] == len(sc)
    assert site["Nuclei_AreaShape_Area"].iloc[0] == pytest.approx(sc["Nuclei_AreaShape_Area"].median())
    from stratonet.core.tables import read_provenance

    assert read_provenance(out / "site.parquet")["feature_set"] == "classical"
    man = json.loads((out / "site.manifest.json").read_text())
    assert man["n_sites"] == 1 and man["core_s_per_site"] > 0 and "cpu_pct_avg" in man
    # A rerun resumes: the finished site is skipped.
    assert run_cli(args) == 0
    man = json.loads((out / "site.manifest.json").read_text())
    assert man["n_sites"] == 0 and man["n_sites_skipped_as_done"] == 1
    assert len(pd.read_parquet(out / "single_cell.parquet")) == len(sc)
    # The saved masks load back as external labels and reproduce the same objects.
    out2 = tmp_path / "out2"
    assert run_cli(["extract", "classical", idx, "-o", out2, "--features", "areashape",
                    "--labels-dir", out / "masks"]) == 0
    sc2 = pd.read_parquet(out2 / "single_cell.parquet")
    assert len(sc2) == len(sc)
    assert np.allclose(np.sort(sc2["Cells_AreaShape_Area"]), np.sort(sc["Cells_AreaShape_Area"]))


def test_site_without_dna_is_a_clear_error(tmp_path, jump_fov, capsys):
    from stratonet.core.errors import SiteError
    from stratonet.runtime import extract_classical

    idx = _crop_index(tmp_path, jump_fov, with_dna=False)
    with pytest.raises(SiteError, match=r"P1/A01/1.*no DNA channel"):
        extract_classical(pd.read_parquet(idx), tmp_path / "o", progress=False)
    assert run_cli(["extract", "classical", idx, "-o", tmp_path / "o2"]) != 0
    err = capsys.readouterr().err
    assert "P1/A01/1" in err and "DNA" in err and "Traceback" not in err
    # --on-error skip records the site instead; with no site left, the run fails loudly (issue 27: one end of run).
    assert run_cli(["extract", "classical", idx, "-o", tmp_path / "o3", "--on-error", "skip"]) == 2
    assert "P1/A01/1" in (tmp_path / "o3" / "errors.csv").read_text()


def test_unknown_feature_group_is_rejected(tmp_path, jump_fov, capsys):
    idx = _crop_index(tmp_path, jump_fov)
    assert run_cli(["extract", "classical", idx, "-o", tmp_path / "o", "--features", "areashape,haralick"]) != 0
    assert "haralick" in capsys.readouterr().err
