"""Illumination correction: a known multiplicative vignette is flattened."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_cli
from stratonet.core.errors import ConfigError
from stratonet.images.illum import compute_illum, mean_images, robust_minimum_rescale, smooth
from stratonet.index import build_index
from stratonet.images.io import load_index_row

SHAPE = (192, 256)


def vignette(shape=SHAPE, strength=0.5):
    y, x = np.mgrid[0: shape[0], 0: shape[1]]
    r2 = ((y - shape[0] / 2) / (shape[0] / 2)) ** 2 + ((x - shape[1] / 2) / (shape[1] / 2)) ** 2
    return 1.0 - strength * r2 / r2.max()


def cells(rng, shape=SHAPE, n=60):
    """Background plus bright blobs at random places (a crude stand-in for stained cells)."""
    from scipy import ndimage

    spikes = np.zeros(shape)
    np.add.at(spikes, (rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)), 800 * 2 * np.pi * 4.0 ** 2)
    return np.full(shape, 200.0) + rng.normal(0, 10, shape) + ndimage.gaussian_filter(spikes, 4.0)


@pytest.fixture(scope="module")
def vignetted_plate(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("illum")
    rng = np.random.default_rng(0)
    v = vignette()
    folder = tmp_path / "BR00000009"
    folder.mkdir()
    truth = {}
    for well in range(1, 13):
        for site in (1, 2, 3, 4):
            for ch, scale in ((1, 1.0), (2, 0.5)):
                clean = cells(rng) * scale
                tifffile.imwrite(folder / f"r01c{well:02d}f{site:02d}p01-ch{ch}sk1fk1fl1.tiff",
                                 np.clip(clean * v, 0, 65535).astype(np.uint16))
                truth[(f"A{well:02d}", site, ch)] = clean
    return folder, v, truth


def block_cv(images, block=16):
    """Coefficient of variation of the mean image's block averages: the large-scale unevenness."""
    m = np.mean(images, axis=0)
    return _block_cv(m, block)


def _block_cv(m, block=16):
    h, w = (m.shape[0] // block) * block, (m.shape[1] // block) * block
    b = m[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))
    return float(b.std() / b.mean())


@pytest.mark.parametrize("method", ["median", "gaussian"])
def test_vignette_is_flattened(vignetted_plate, tmp_path, method):
    folder, v, truth = vignetted_plate
    index = build_index(folder, channel_map="1=DNA,2=AGP")
    corrected = compute_illum(index, tmp_path / "out", method=method, size=41)
    assert (tmp_path / "out" / "illum" / "BR00000009_IllumDNA.npy").exists()
    assert corrected["Illum_AGP"].str.endswith("BR00000009_IllumAGP.npy").all()
    # shading left in an image = observed / shading-free truth; its unevenness (block CV) before vs after
    for ch_no, ch in ((1, "DNA"), (2, "AGP")):
        before, after = [], []
        for _, r in corrected.iterrows():
            clean = truth[(r["Metadata_Well"], r["Metadata_Site"], ch_no)]
            before.append(load_index_row(r, [ch], illum=False)[0] / clean)
            after.append(load_index_row(r, [ch], illum=True)[0] / clean)
        cv_before, cv_after = block_cv(before), block_cv(after)
        assert cv_before > 0.10
        print(f"{method} {ch}: block CV {cv_before:.3f} -> {cv_after:.3f}")
        assert cv_after < cv_before / 3, (ch, cv_before, cv_after)
    fn = np.load(tmp_path / "out" / "illum" / "BR00000009_IllumDNA.npy")
    assert fn.shape == SHAPE and fn.dtype == np.float32 and fn.min() >= 1.0
    assert np.corrcoef(fn.ravel(), v.ravel())[0, 1] > 0.95


def test_cli_index_with_illum(vignetted_plate, tmp_path):
    folder, _, _ = vignetted_plate
    out = tmp_path / "run" / "index.parquet"
    assert run_cli(["index", folder, "-o", out, "--channel-map", "1=DNA,2=AGP", "--illum", "--illum-size", "31"]) == 0
    df = pd.read_parquet(out)
    assert {"Illum_DNA", "Illum_AGP"} <= set(df.columns) and len(df) == 48
    assert (tmp_path / "run" / "illum" / "BR00000009_IllumAGP.npy").exists()


def test_mean_images_is_the_mean(vignetted_plate):
    folder, _, _ = vignetted_plate
    index = build_index(folder, channel_map="1=DNA,2=AGP")
    stack = np.stack([load_index_row(r, ["DNA", "AGP"], illum=False) for _, r in index.iterrows()])
    np.testing.assert_allclose(mean_images(index, ["DNA", "AGP"]), stack.mean(axis=0), rtol=1e-6)


def test_smooth_and_rescale_units():
    flat = np.full((50, 70), 7.0)
    np.testing.assert_allclose(smooth(flat, "median", 25), 7.0)
    np.testing.assert_allclose(smooth(flat, "gaussian", 25), 7.0)
    r = robust_minimum_rescale(np.linspace(1, 100, 1000).reshape(20, 50))
    assert r.min() == pytest.approx(1.0) and r.max() > 10
    with pytest.raises(ConfigError, match="unknown illumination filter"):
        smooth(flat, "box", 5)
