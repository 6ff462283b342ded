"""The pixel baseline: features, resume, errors, manifest, provenance, and the demo stages."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_cli
from stratonet.extract.pixel import block_downsample, pixel_features
from stratonet.core.tables import read_provenance


def _plate(folder, wells=3, sites=2, shape=(64, 80)):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for c in range(1, wells + 1):
        for f in range(1, sites + 1):
            for ch in (1, 2):
                img = rng.integers(0, 3000, size=shape, dtype=np.uint16)
                img[: shape[0] // 2] += np.uint16(1000 * ch * c)  # top half brighter: visible after downsampling
                tifffile.imwrite(folder / f"r01c{c:02d}f{f:02d}p01-ch{ch}sk1fk1fl1.tiff", img)
    return folder


@pytest.fixture
def indexed(tmp_path):
    folder = _plate(tmp_path / "BR00000005")
    idx = tmp_path / "index.parquet"
    assert run_cli(["index", folder, "-o", idx, "--channel-map", "1=DNA,2=AGP"]) == 0
    return idx


def test_pixel_cli_features_manifest_provenance(indexed, tmp_path):
    out = tmp_path / "feat" / "pixel.parquet"
    assert run_cli(["extract", "pixel", indexed, "-o", out, "--size", "8", "--channels", "AGP"]) == 0
    df = pd.read_parquet(out)
    feats = [c for c in df.columns if not c.startswith("Metadata_")]
    assert len(df) == 6 and feats == [f"AGP_px_{i:04d}" for i in range(64)]
    assert not any(c.startswith("Path_") for c in df.columns)
    x = df[feats].to_numpy()
    assert x.min() >= 0 and x.max() <= 1
    assert (x[:, :32].mean(axis=1) > x[:, 32:].mean(axis=1)).all()  # the brighter top half survives
    prov = read_provenance(out)
    assert prov.pop("scaling")["mode"] == "plate"  # the default intensity scaling (tests/images/test_scaling.py)
    assert prov == {"feature_set": "pixel", "size": 8, "channels": ["AGP"], "illumination_corrected": False}
    man = json.loads((tmp_path / "feat" / "pixel.manifest.json").read_text())
    assert man["n_sites"] == 6 and man["errors"] == 0 and man["sites_per_s"] > 0
    assert {"wall_s", "cpu_pct_avg", "mem_pct_max"} <= set(man["resources"]) and "numpy" in man["packages"]
    assert (tmp_path / "feat" / "extract_pixel.config.yaml").exists()


def test_pixel_resumes(indexed, tmp_path):
    from stratonet.runtime import extract_pixel
    from stratonet.core.tables import read_table

    index = read_table(indexed)
    out = tmp_path / "px.parquet"
    extract_pixel(index.iloc[:2], out, size=4)
    first = pd.read_parquet(out)
    extract_pixel(index, out, size=4)
    df = pd.read_parquet(out)
    man = json.loads((tmp_path / "px.manifest.json").read_text())
    assert len(df) == 6 and man["n_sites"] == 4 and man["n_sites_skipped_as_done"] == 2
    assert not df.duplicated(["Metadata_Plate", "Metadata_Well", "Metadata_Site"]).any()
    pd.testing.assert_frame_equal(df.iloc[:2].reset_index(drop=True), first)
    assert read_provenance(out)["feature_set"] == "pixel"


def test_pixel_on_error(indexed, tmp_path, capsys):
    from stratonet.core.tables import read_table

    bad = read_table(indexed).iloc[1]["Path_DNA"]
    with open(bad, "wb") as fh:
        fh.write(b"broken")
    out = tmp_path / "px.parquet"
    assert run_cli(["extract", "pixel", indexed, "-o", out]) != 0
    err = capsys.readouterr().err
    assert bad in err and "Traceback" not in err
    assert run_cli(["extract", "pixel", indexed, "-o", out, "--on-error", "skip"]) == 0
    assert len(pd.read_parquet(out)) == 5
    errors = pd.read_csv(tmp_path / "px.errors.csv")
    assert len(errors) == 1 and bad in errors["error"].iloc[0]


def test_unknown_channel_is_error(indexed, tmp_path, capsys):
    assert run_cli(["extract", "pixel", indexed, "-o", tmp_path / "p.parquet", "--channels", "Mito"]) != 0
    assert "channel(s) ['Mito'] not in the index" in capsys.readouterr().err


def test_pixel_features_match_plain_resize():
    rng = np.random.default_rng(3)
    img = rng.random((2, 256, 256)).astype(np.float32)
    img[:, :, :128] += 2
    from stratonet.images.preprocess import rescale_percentile, resize

    ref = resize(rescale_percentile(img), 16).reshape(-1)
    fast = pixel_features(img, 16)
    assert fast.shape == (2 * 256,)
    assert np.abs(fast - ref).max() < 0.05 and np.corrcoef(fast, ref)[0, 1] > 0.99
    assert block_downsample(img, 16).shape == (2, 64, 64)


def test_demo_stages_index_and_pixel(tmp_path):
    from stratonet.demo.pipeline import DemoContext, stage_extract_pixel, stage_index

    synth = _plate(tmp_path / "synth" / "images", wells=2, sites=1)
    rows = []
    for c in (1, 2):
        r = {"Metadata_Plate": "SYNTH01", "Metadata_Well": f"A{c:02d}", "Metadata_Site": 1,
             "Metadata_broad_sample": "BRD-X" if c == 2 else "", "Metadata_pert_iname": "cpdX" if c == 2 else "DMSO",
             "Metadata_moa": "tubulin" if c == 2 else "control", "Metadata_concentration": 1.0 if c == 2 else 0.0,
             "Metadata_control_type": "trt" if c == 2 else "negcon"}
        for n, ch in ((1, "DNA"), (2, "AGP")):
            r[f"FileName_Orig{ch}"] = f"r01c{c:02d}f01p01-ch{n}sk1fk1fl1.tiff"
            r[f"PathName_Orig{ch}"] = "images"  # relative to the CSV
        rows.append(r)
    pd.DataFrame(rows).to_csv(tmp_path / "synth" / "load_data.csv", index=False)
    ctx = DemoContext(out=tmp_path / "demo", synth_dir=tmp_path / "synth")
    stage_index(ctx)
    real = pd.read_parquet(ctx.real_index)
    assert real.iloc[0]["Metadata_Plate"] == "BR00117006" and {"Path_DNA", "Path_AGP", "Path_RNA"} <= set(real)
    syn = pd.read_parquet(ctx.synth_index)
    assert ctx.synth_index == tmp_path / "demo" / "index" / "synth.parquet" and len(syn) == 2
    assert list(syn["Metadata_moa"]) == ["control", "tubulin"]
    stage_extract_pixel(ctx)
    feats = pd.read_parquet(ctx.features["pixel"])
    assert ctx.features["pixel"] == tmp_path / "demo" / "features" / "pixel.parquet"
    assert len(feats) == 2 and "Metadata_pert_iname" in feats and "DNA_px_0255" in feats and "AGP_px_0000" in feats
