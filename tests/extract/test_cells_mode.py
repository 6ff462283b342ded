"""Cells mode: the nucleus finder (size filter, declumping), the per-site cap, native crop size and crops/s."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import SHARED_DATA, need
from stratonet.extract.deep.cells_nuclei import nucleus_centers, sample_centers


def discs(centres, size=160, radius=9, amp=1.0):
    yy, xx = np.mgrid[:size, :size]
    img = np.zeros((size, size), np.float32)
    for cy, cx in centres:
        img += amp * (((yy - cy) ** 2 + (xx - cx) ** 2) < radius ** 2)
    return np.clip(img, 0, 1)


def test_touching_nuclei_are_split_and_debris_dropped():
    centres = [(30, 30), (30, 47), (100, 100), (60, 130)]  # the first two touch (17 px apart, radius 9)
    img = discs(centres)
    img[140:143, 10:13] = 1.0  # 3x3 debris: below the minimal nucleus diameter (5 px)
    found = nucleus_centers(img)
    assert len(found) == 4
    for c in centres:
        assert np.min(np.hypot(*(found - np.array(c)).T)) < 3


def test_small_nuclei_of_a_small_field_are_found():
    rng = np.random.default_rng(3)
    centres = [(y, x) for y in (20, 60, 100) for x in (20, 60, 100)]
    img = discs(centres, size=128, radius=4) + rng.normal(0, 0.01, (128, 128)).astype(np.float32)
    assert len(nucleus_centers(img)) == 9  # 8 px nuclei, as the synthetic plate draws them at 128 px


def test_flat_and_empty_images_give_no_centres():
    assert nucleus_centers(np.zeros((64, 64))).shape == (0, 2)
    assert nucleus_centers(np.full((64, 64), 0.3)).shape == (0, 2)


def test_bbbc013_counts_agree_with_the_classical_segmentation():
    from stratonet.extract.classical.segment import segment_nuclei
    from stratonet.images.transforms import rescale_to_unit
    from stratonet.images.io import read_image

    images = need(SHARED_DATA / "bbbc013_translocation" / "images")
    for name in ("Channel2-01-A-01.tif", "Channel2-50-E-02.tif"):
        dna = rescale_to_unit(read_image(images / name).astype(np.float32)).numpy()[0]
        n_full = int(segment_nuclei(dna).max())
        # the same nuclei, plus objects of 9-12 px that the classical 12 px minimum drops
        assert n_full <= len(nucleus_centers(dna)) <= 1.2 * n_full


def test_sample_is_capped_seeded_and_per_site():
    c = np.arange(200, dtype=float).reshape(100, 2)
    a = sample_centers(c, 10, 0, ("P", "A01", "1"))
    assert len(a) == 10 and np.array_equal(a, sample_centers(c, 10, 0, ("P", "A01", "1")))
    assert not np.array_equal(a, sample_centers(c, 10, 0, ("P", "A02", "1")))
    assert sample_centers(c, None, 0, ("P",)) is c and len(sample_centers(c, 500, 0, ("P",))) == 100


def test_cells_mode_native_crops_cap_and_manifest(tmp_path):
    from stratonet.extract.deep.run import cells_batch_size
    from stratonet.runtime import extract_deep

    rng = np.random.default_rng(0)
    rows = []
    for s in range(2):
        centres = rng.uniform(20, 140, (6, 2))
        dna = (discs(centres) * 4000 + 200).astype(np.uint16)
        tifffile.imwrite(tmp_path / f"dna{s}.tif", dna)
        rows.append({"Metadata_Plate": "P", "Metadata_Well": f"A0{s + 1}", "Metadata_Site": 1,
                     "Path_DNA": str(tmp_path / f"dna{s}.tif")})
    idx = pd.DataFrame(rows)
    man = extract_deep(idx, tmp_path / "c.parquet", model="stratonet18", mode="cells", crop_size=32, max_cells=3,
                       workers=0, progress=False)
    assert man["provenance"]["input_size"] == 32  # native crop size, not up-sampled to 224
    assert man["provenance"]["cells"]["max_cells_per_site"] == 3
    assert man["crops"] == 6 and man["crops_per_s"] > 0
    cells = pd.read_parquet(man["cells_output"])
    assert cells.groupby("Metadata_Well").size().tolist() == [3, 3]
    assert cells_batch_size(16, 96) == 87 and cells_batch_size(16, 224) == 16 and cells_batch_size(16, 448) == 16
    # another cap is another configuration: no silent mix on resume
    from stratonet.core.errors import ConfigError

    with pytest.raises(ConfigError, match="different configuration"):
        extract_deep(idx, tmp_path / "c.parquet", model="stratonet18", mode="cells", crop_size=32, max_cells=4,
                     workers=0, progress=False)


def test_finding_nuclei_leaves_the_pixels_alone(tmp_path):
    """The finder rescales a copy: crops are the same as with the same centres given as a table."""
    import torch

    from stratonet.extract.deep.dataset import Preprocess, SiteDataset

    dna = (discs([(40, 40), (90, 100), (120, 50)]) * 3000 + 100).astype(np.uint16)
    tifffile.imwrite(tmp_path / "dna.tif", dna)
    rows = [{"Metadata_Plate": "P", "Metadata_Well": "A01", "Metadata_Site": 1, "Path_DNA": str(tmp_path / "dna.tif")}]
    prep = Preprocess(channels=["DNA"], mode="cells", input_size=32, crop_size=32)
    found = SiteDataset(rows, prep)[0]
    given = SiteDataset(rows, prep, centers={("P", "A01", "1"): found["centers"]})[0]
    assert len(found["centers"]) == 3 and torch.equal(found["x"], given["x"])
