"""One image preparation: training and extraction give a network the same pixels for the same image."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from stratonet.images.transforms import prepare_image, rescale_to_unit, resize_batch, resize_image, scale_resize_planes
from stratonet.images.preprocess import rescale_percentile

FOV = Path(str(resources.files("stratonet") / "data" / "jump_fov"))


@pytest.fixture(scope="module")
def real_site() -> np.ndarray:
    """The bundled real JUMP field of view, 3 channels, uint16, cut to 512 x 512 to stay fast."""
    return np.stack([tifffile.imread(p)[:512, :512] for p in sorted(FOV.glob("*.tiff"))])


def test_training_loads_the_pixels_extraction_prepares(real_site, tmp_path):
    """train's ImageFolder / index loaders rescale exactly as extraction does; preload_index resizes as it does."""
    from stratonet.train.data import IndexImageDataset, preload_index, to_unit_float

    expected = rescale_to_unit(real_site).numpy()
    assert np.array_equal(to_unit_float(real_site), expected)
    paths = {}
    for ch, plane in zip(("AGP", "RNA", "DNA"), real_site):
        paths[f"Path_{ch}"] = str(tmp_path / f"{ch}.tiff")
        tifffile.imwrite(paths[f"Path_{ch}"], plane)
    index = pd.DataFrame([{"Metadata_Plate": "P", "Metadata_Well": "A01", "Metadata_Site": 1, **paths}])
    loaded = IndexImageDataset(index, ["AGP", "RNA", "DNA"], np.array([0])).load(0)
    assert torch.equal(loaded, torch.from_numpy(expected))
    imgs, ok = preload_index(index, ["AGP", "RNA", "DNA"], size=64)
    raw = resize_batch(torch.from_numpy(real_site.astype(np.float32))[None], 64)[0].numpy()
    scale = np.percentile(raw.reshape(3, -1), 99.9, axis=1).astype(np.float32)
    assert np.array_equal(imgs[0], raw / scale[:, None, None]) and list(ok) == [0]


def test_the_numpy_names_are_the_same_implementation(real_site):
    """preprocess.rescale_percentile (pixel baseline, older callers) is rescale_to_unit, bit for bit."""
    assert np.array_equal(rescale_percentile(real_site), rescale_to_unit(real_site).numpy())
    assert np.array_equal(rescale_percentile(real_site[0]), rescale_to_unit(real_site[0]).numpy()[0])
    assert np.array_equal(resize_image(real_site[0], 32), resize_batch(
        torch.from_numpy(real_site[:1].astype(np.float32))[None], 32)[0, 0].numpy())


def test_extraction_fused_path_matches_prepare_image(real_site):
    """extract deep's one-pass scale + resize equals prepare_image within float32 rounding."""
    bounds = [tuple(b) for b in np.percentile(real_site.reshape(3, -1), [0.1, 99.9], axis=1).T]
    fused = scale_resize_planes(list(real_site), bounds, 96)[0]
    plain = prepare_image(real_site, 96, bounds=np.asarray(bounds))
    assert fused.shape == plain.shape == (3, 96, 96)
    assert float((fused - plain).abs().max()) < 1e-5
