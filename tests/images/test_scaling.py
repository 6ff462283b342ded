"""Intensity scaling (image | plate | bitdepth) for `extract deep` and `extract pixel`, and centre-object crops."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_cli
from stratonet.core.errors import ConfigError, InputFileError
from stratonet.extract.classical.center import center_object_crops, label_at
from stratonet.extract.deep.dataset import Preprocess, SiteDataset
from stratonet.extract.deep.run import manifest_path
from stratonet.runtime import extract_deep
from stratonet.runtime import extract_pixel
from stratonet.images.scaling import Scaling, ScalingSpec, load_scaling, resolve_scaling, scaling_path
from stratonet.images.preprocess import crops_around
from stratonet.core.tables import feature_columns, read_provenance

FAST = dict(model="stratonet18", input_size=64, workers=0, progress=False)


def _cells_plane(rng, size=96, brightness=1.0, dtype=np.uint16):
    """A plane with four bright disks on a dim background; ``brightness`` multiplies the whole image."""
    yy, xx = np.mgrid[:size, :size]
    img = rng.normal(200, 5, (size, size))
    for cy, cx in ((24, 24), (24, 70), (70, 24), (70, 70)):
        img += 2000 * (((yy - cy) ** 2 + (xx - cx) ** 2) < 12 ** 2)
    img = img * brightness
    if dtype == np.uint8:
        img = img / 16
    return np.clip(img, 0, np.iinfo(dtype).max).astype(dtype)


@pytest.fixture
def bright_dim_index(tmp_path):
    """Plate P1: four wells, identical structure; wells A03/A04 are 2x as bright (an intensity phenotype)."""
    rng = np.random.default_rng(1)
    rows = []
    for i, well in enumerate(["A01", "A02", "A03", "A04"]):
        row = {"Metadata_Plate": "P1", "Metadata_Well": well, "Metadata_Site": 1}
        for ch in ("DNA", "ER"):
            p = tmp_path / "img" / f"{well}_{ch}.tiff"
            p.parent.mkdir(exist_ok=True)
            tifffile.imwrite(p, _cells_plane(rng, brightness=2.0 if i >= 2 else 1.0))
            row[f"Path_{ch}"] = str(p)
        rows.append(row)
    path = tmp_path / "index.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def _well_means(path):
    df = pd.read_parquet(path).sort_values("Metadata_Well")
    return df[feature_columns(df)].to_numpy().mean(axis=1)


def test_image_scaling_erases_intensity_plate_and_bitdepth_keep_it(bright_dim_index, tmp_path):
    means = {}
    for mode in ("image", "plate", "bitdepth"):
        out = tmp_path / f"px_{mode}.parquet"
        extract_pixel(bright_dim_index, out, size=8, scaling=mode)
        means[mode] = _well_means(out)
        prov = read_provenance(out)
        assert prov["scaling"]["mode"] == mode
    # per-image percentiles: the 2x brighter wells look like the others (ratio ~ 1)
    assert means["image"][2:].mean() / means["image"][:2].mean() == pytest.approx(1.0, abs=0.05)
    # plate percentiles and bit depth keep the brightness difference
    assert means["plate"][2:].mean() / means["plate"][:2].mean() > 1.5
    assert means["bitdepth"][2:].mean() / means["bitdepth"][:2].mean() == pytest.approx(2.0, rel=0.05)


def test_plate_scaling_file_is_saved_reused_and_portable(bright_dim_index, tmp_path):
    out = tmp_path / "a" / "px.parquet"
    extract_pixel(bright_dim_index, out, size=8, scaling="plate")
    rec = load_scaling(scaling_path(out))
    lo, hi = rec["plates"]["P1"]["DNA"]
    assert rec["mode"] == "plate" and 0 <= lo < hi and rec["percentiles"] == [0.1, 99.9]
    man = json.loads(out.with_name(out.name.removesuffix(".parquet") + ".manifest.json").read_text())
    assert man["config"]["scaling"]["plates"]["P1"]["DNA"] == [lo, hi]
    # a second machine passes the numbers explicitly and gets the same features
    out_b = tmp_path / "b" / "px.parquet"
    extract_pixel(bright_dim_index, out_b, size=8, scaling="plate", scaling_file=scaling_path(out))
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(out_b))
    # numbers chosen by hand are honoured (here: a wider range -> darker features)
    wide = dict(rec, plates={"P1": {"DNA": [lo, 2 * hi], "ER": [lo, 2 * hi]}})
    (tmp_path / "wide.json").write_text(json.dumps(wide))
    out_c = tmp_path / "c" / "px.parquet"
    extract_pixel(bright_dim_index, out_c, size=8, scaling="plate", scaling_file=tmp_path / "wide.json")
    assert _well_means(out_c).mean() < _well_means(out).mean()


def test_scaling_file_without_the_plate_is_one_line_error(bright_dim_index, tmp_path, capsys):
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"mode": "plate", "percentiles": [0.1, 99.9],
                               "plates": {"P9": {"DNA": [0, 1], "ER": [0, 1]}}}))
    rc = run_cli(["extract", "pixel", bright_dim_index, "-o", tmp_path / "px.parquet", "--scaling-file", bad,
                  "--scaling", "plate"])
    err = capsys.readouterr().err
    assert rc != 0 and "other.json" in err and "P1" in err and "Traceback" not in err
    with pytest.raises(ConfigError):
        resolve_scaling(ScalingSpec("image", file=bad), [], ["DNA"], tmp_path / "x.parquet")
    (tmp_path / "junk.json").write_text("not json")
    with pytest.raises(InputFileError):
        load_scaling(tmp_path / "junk.json")


def test_bitdepth_uses_dtype_max_or_bit_depth(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "u8.tiff"
    tifffile.imwrite(p, _cells_plane(rng, dtype=np.uint8))
    rows = [{"Metadata_Plate": "P", "Metadata_Well": "A01", "Metadata_Site": 1, "Path_DNA": str(p)}]
    own = resolve_scaling(ScalingSpec("bitdepth"), rows, ["DNA"], tmp_path / "o.parquet")  # each file by its own dtype
    assert own.bounds(rows[0], [np.uint8]).tolist() == [[0.0, 255.0]]
    assert own.bounds(rows[0], [np.uint16]).tolist() == [[0.0, 65535.0]]
    s12 = resolve_scaling(ScalingSpec("bitdepth", bit_depth=12), rows, ["DNA"], tmp_path / "o.parquet")
    assert s12.bounds(rows[0]).tolist() == [[0.0, 4095.0]]
    with pytest.raises(ConfigError):
        resolve_scaling(ScalingSpec("plate", bit_depth=12), rows, ["DNA"], tmp_path / "o.parquet")


def test_deep_records_scaling_and_refuses_resume_with_another(bright_dim_index, tmp_path, capsys):
    out = tmp_path / "deep.parquet"
    extract_deep(bright_dim_index, out, scaling="plate", **FAST)
    prov = read_provenance(out)
    assert prov["scaling"]["mode"] == "plate" and "P1" in prov["scaling"]["plates"]
    man = json.loads(manifest_path(out).read_text())
    assert man["provenance"]["scaling"]["plates"]["P1"]["ER"] == prov["scaling"]["plates"]["P1"]["ER"]
    rc = run_cli(["extract", "deep", bright_dim_index, "-o", out, "--model", "stratonet18", "--input-size", "64",
                  "--workers", "0", "--scaling", "image"])
    err = capsys.readouterr().err
    assert rc != 0 and "different configuration" in err and "scaling" in err and "Traceback" not in err
    # the same mode resumes (nothing left to do) and reuses the stored percentiles
    man2 = extract_deep(bright_dim_index, out, scaling="plate", **FAST)
    assert man2["sites_resumed"] == 4 and man2["sites_processed"] == 0


def test_small_crops_fill_the_model_input(tmp_path):
    """A 40 px single-cell stack and a 32 px cells-mode crop are resized up to the input size, not padded."""
    rng = np.random.default_rng(0)
    crop = np.stack([_cells_plane(rng, size=40, brightness=1.0)] * 2)
    crop[:] = 1000  # flat bright crop: a padded corner would leave zeros
    crop[:, 18:22, 18:22] = 3000
    path = tmp_path / "c.npy"
    np.save(path, crop)
    row = {"Metadata_Plate": "P", "Metadata_Well": "A01", "Metadata_Site": 1, "Metadata_ObjectNumber": 1,
           "Path_Stack": str(path), "Stack_Channels": "DNA|ER"}
    prep = Preprocess(channels=["DNA", "ER"], mode="whole", input_size=224,
                      scaling=Scaling("bitdepth", ["DNA", "ER"], maxima={"DNA": 4000.0, "ER": 4000.0}))
    item = SiteDataset([row], prep)[0]
    assert item["error"] is None and tuple(item["x"].shape) == (1, 2, 224, 224)
    assert float(item["x"][0, 0, :20, :20].min()) > 0.2 and float(item["x"][0, 0, -20:, -20:].min()) > 0.2

    plane = np.full((96, 96), 1000, np.uint16)
    plane[0, 0] = 1001  # not constant: a constant image is a bad site (issue 27, D2); the corner is outside the crop
    p = tmp_path / "site.tiff"
    tifffile.imwrite(p, plane)
    site = {"Metadata_Plate": "P", "Metadata_Well": "A01", "Metadata_Site": 1, "Path_DNA": str(p)}
    prep = Preprocess(channels=["DNA"], mode="cells", input_size=224, crop_size=32,
                      scaling=Scaling("bitdepth", ["DNA"], maxima={"DNA": 2000.0}))
    item = SiteDataset([site], prep, {("P", "A01", "1"): np.array([[48.0, 48.0]])})[0]
    assert tuple(item["x"].shape) == (1, 1, 224, 224)
    assert float(item["x"].min()) == pytest.approx(0.5, abs=1e-3)  # every pixel is image, none is padding


def test_center_object_keeps_only_the_central_cell():
    labels = np.zeros((64, 64), np.int32)
    labels[20:44, 20:44] = 1  # the cell at the centre
    labels[0:10, 0:64] = 2  # a neighbour cut by the crop edge
    img = np.ones((1, 2, 64, 64), np.float32)
    out, found = center_object_crops(img, labels[None])
    assert found.tolist() == [True]
    assert out[0, :, 30, 30].tolist() == [1.0, 1.0] and out[0, :, 5, 5].tolist() == [0.0, 0.0]
    assert out[0, :, 50, 50].tolist() == [0.0, 0.0]  # background too
    assert label_at(labels, 45.0, 45.0, radius=2) == 1  # just outside the cell: nearest label within radius
    empty, found = center_object_crops(img, np.zeros((1, 64, 64), np.int32))
    assert found.tolist() == [False] and empty.max() == 0


def test_deep_cells_center_object(tmp_path):
    """Cells mode with --center-object: crops hold one cell each; a neighbour inside the crop is zeroed."""
    rng = np.random.default_rng(0)
    dna = _cells_plane(rng)
    p = tmp_path / "dna.tiff"
    tifffile.imwrite(p, dna)
    idx = pd.DataFrame([{"Metadata_Plate": "P", "Metadata_Well": "A01", "Metadata_Site": 1, "Path_DNA": str(p)}])
    centres = np.array([[24.0, 24.0], [24.0, 70.0], [70.0, 24.0], [70.0, 70.0]])
    prep = Preprocess(channels=["DNA"], mode="cells", input_size=64, crop_size=80, center_object=True)
    item = SiteDataset(idx.to_dict("records"), prep, {("P", "A01", "1"): centres})[0]
    assert item["error"] is None and item["x"].shape[0] == 4
    x = item["x"].numpy()
    # the crop around (24, 24) reaches the disk at (24, 70): that neighbour (right half) must be zero
    assert x[0, 0, 28:36, 28:36].mean() > 0.5 and x[0, 0, 28:36, 60:64].max() == 0.0
    plain = SiteDataset(idx.to_dict("records"), Preprocess(channels=["DNA"], mode="cells", input_size=64,
                                                           crop_size=80), {("P", "A01", "1"): centres})[0]
    assert plain["x"].numpy()[0, 0, 28:36, 60:64].max() > 0.5
    out = tmp_path / "deep.parquet"
    man = extract_deep(idx, out, mode="cells", center_object=True, **FAST)
    assert man["provenance"]["center_object"] is True and man["sites_processed"] == 1
    with pytest.raises(ConfigError, match="center-object"):
        extract_deep(idx, tmp_path / "d2.parquet", mode="tiles", center_object=True, **FAST)


def test_classical_center_object_measures_one_cell(tmp_path):
    """A single-cell crop with a neighbour cut by its edge: --center-object measures the central cell only."""
    from stratonet.extract.classical.run import ClassicalConfig, process_site

    yy, xx = np.mgrid[:80, :80]
    dna = np.full((80, 80), 300.0)
    dna[((yy - 40) ** 2 + (xx - 40) ** 2) < 10 ** 2] = 20000  # the centre cell's nucleus
    dna[((yy - 40) ** 2 + (xx - 76) ** 2) < 10 ** 2] = 20000  # a neighbour's nucleus, cut by the right edge
    stack = np.stack([dna, dna * 0.5]).astype(np.uint16)
    path = tmp_path / "crop.npy"
    np.save(path, stack)
    row = {"Metadata_Plate": "P", "Metadata_Well": "A01", "Metadata_Site": 1, "Metadata_ObjectNumber": 7,
           "Path_Stack": str(path), "Stack_Channels": "DNA|ER"}
    both = process_site(row, ["DNA", "ER"], ClassicalConfig(groups=["areashape"], cell_channels=["ER"]))
    one = process_site(row, ["DNA", "ER"], ClassicalConfig(groups=["areashape"], cell_channels=["ER"],
                                                            center_object=True))
    assert len(both["cells"]) == 2 and len(one["cells"]) == 1
    assert int(one["median"]["Count_Nuclei"].iloc[0]) == 1
    x = float(one["cells"]["Nuclei_AreaShape_Center_X"].iloc[0]) if "Nuclei_AreaShape_Center_X" in one["cells"] \
        else float(one["cells"].filter(like="Location_Center_X").iloc[0, 0])
    assert abs(x - 40) < 3
