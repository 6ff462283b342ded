"""Synthetic plates: determinism, file layout, LoadData/platemap tables, errors, CLI and demo stage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_cli
from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.runtime import make_plate
from stratonet.synth import (
    CHANNELS, COMPOUNDS, SynthParams, make_platemap, plan_plate, render_site,
)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "Images").iterdir())}


def test_render_shape_dtype_and_channel_order():
    img, truth = render_site(SynthParams(size=128), "B02", 1, masks=True)
    assert img.shape == (5, 128, 128) and img.dtype == np.uint16
    assert CHANNELS == ("Mito", "AGP", "RNA", "ER", "DNA")
    assert truth.nuclei.shape == (128, 128) and truth.n_cells > 3
    # nuclei are brightest in DNA (last channel), and every nucleus lies inside its own cell
    dna = img[4].astype(float)
    assert dna[truth.nuclei > 0].mean() > 3 * dna[truth.cells == 0].mean()
    inside = truth.nuclei > 0
    assert np.array_equal(truth.cells[inside], truth.nuclei[inside])


def test_same_seed_same_bytes_different_seed_differs():
    a = render_site(SynthParams(seed=3, size=96), "C05", 2)
    b = render_site(SynthParams(seed=3, size=96), "C05", 2)
    c = render_site(SynthParams(seed=4, size=96), "C05", 2)
    d = render_site(SynthParams(seed=3, size=96), "C05", 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_plate_files_identical_for_same_seed(tmp_path):
    make_plate(tmp_path / "a", wells=3, sites=1, seed=7, size=64, progress=False)
    make_plate(tmp_path / "b", wells=3, sites=1, seed=7, size=64, progress=False)
    make_plate(tmp_path / "c", wells=3, sites=1, seed=8, size=64, progress=False)
    da, db, dc = (_digest(tmp_path / x) for x in "abc")
    assert da == db
    assert set(da) == set(dc) and all(da[k] != dc[k] for k in da)


def test_site_independent_of_well_count():
    small, large = plan_plate(wells=6, seed=1, size=96), plan_plate(wells=90, seed=1, size=96)
    shared = [w.well for w in small.wells if w.pert_iname == large.well(w.well).pert_iname]
    assert shared, "no well with the same treatment on both plates"
    for well in shared[:2]:
        assert np.array_equal(render_site(small, well, 2), render_site(large, well, 2))


@pytest.mark.parametrize("n", [1, 2, 7, 24, 37, 96, 97, 384])
def test_dmso_majority_and_compounds_present(n):
    wells = make_platemap(n, seed=0, plate="P")
    neg = sum(w.control_type == "negcon" for w in wells)
    assert neg > n / 2
    assert [w.well for w in wells][:2] == ["A01", "A02"][: min(n, 2)]
    if n >= 13:  # 6 treated wells or more: every compound appears
        assert {w.pert_iname for w in wells if w.control_type == "trt"} == {c.pert_iname for c in COMPOUNDS}
    if n >= 37:  # a full set of 6 compounds x 3 doses
        assert len({(w.pert_iname, w.concentration) for w in wells if w.control_type == "trt"}) == 18


def test_grid_fills_row_by_row():
    w96 = [w.well for w in make_platemap(96, 0, "P")]
    assert w96[11:14] == ["A12", "B01", "B02"] and w96[-1] == "H12"
    w384 = [w.well for w in make_platemap(384, 0, "P")]
    assert w384[23:25] == ["A24", "B01"] and w384[-1] == "P24"


def test_96_wells_4_sites_files_and_tables(tmp_path):
    out = tmp_path / "plate"
    spec = make_plate(out, wells=96, sites=4, seed=0, size=64, progress=False)
    files = sorted((out / "Images").iterdir())
    assert len(files) == 96 * 4 * 5
    assert files[0].name == "r01c01f01p01-ch1sk1fk1fl1.tiff"
    assert (out / "Images" / "r08c12f04p01-ch5sk1fk1fl1.tiff").exists()
    img = tifffile.imread(files[0])
    assert img.dtype == np.uint16 and img.shape == (64, 64)

    ld = pd.read_csv(out / "load_data.csv")
    assert len(ld) == 384
    for col in ["Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_broad_sample", "Metadata_pert_iname",
                "Metadata_moa", "Metadata_concentration", "Metadata_control_type"]:
        assert col in ld.columns
    for ch in ["DNA", "ER", "RNA", "AGP", "Mito"]:
        paths = [Path(d) / f for d, f in zip(ld[f"PathName_Orig{ch}"], ld[f"FileName_Orig{ch}"])]
        assert all(p.is_absolute() and p.exists() for p in paths)
    assert ld.loc[0, "FileName_OrigDNA"] == "r01c01f01p01-ch5sk1fk1fl1.tiff"  # ch5 = DNA
    assert ld.loc[0, "FileName_OrigMito"] == "r01c01f01p01-ch1sk1fk1fl1.tiff"  # ch1 = Mito
    assert (ld.groupby("Metadata_Well")["Metadata_control_type"].first() == "negcon").sum() > 48
    dmso = ld[ld["Metadata_control_type"] == "negcon"]
    assert set(dmso["Metadata_pert_iname"]) == {"DMSO"} and set(dmso["Metadata_moa"]) == {"control"}
    assert (dmso["Metadata_concentration"] == 0).all()

    pm = pd.read_csv(out / "platemap" / "SYNTH01_platemap.txt", sep="\t")
    assert list(pm.columns) == ["well_position", "broad_sample", "solvent", "concentration"] and len(pm) == 96
    bc = pd.read_csv(out / "platemap" / "barcode_platemap.csv")
    assert bc.to_dict("records") == [{"Assay_Plate_Barcode": "SYNTH01", "Plate_Map_Name": "SYNTH01_platemap"}]
    cm = pd.read_csv(out / "platemap" / "compound_metadata.tsv", sep="\t")
    assert {"broad_sample", "pert_iname", "moa", "control_type"} <= set(cm.columns)
    assert set(pm["broad_sample"]) <= set(cm["broad_sample"])

    gt = pd.read_csv(out / "ground_truth.csv")
    assert len(gt) == 96 and {"compound", "dose_um", "phenotype", "effect_size"} <= set(gt.columns)
    meta = json.loads((out / "synth.json").read_text())
    assert meta["seed"] == 0 and meta["size"] == 64 and meta["complete"] and meta["generator_version"]
    assert meta["params"]["gain"] > 0 and spec.n_wells == 96
    sites = pd.read_parquet(out / "ground_truth_sites.parquet")
    assert len(sites) == 384 and (sites["n_cells"] >= 0).all()


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="at least 1"):
        plan_plate(wells=0)
    with pytest.raises(ConfigError, match="at most 384"):
        plan_plate(wells=385)
    with pytest.raises(ConfigError, match="sites"):
        plan_plate(wells=2, sites=0)
    with pytest.raises(StratoNetError, match="Z99"):
        render_site(SynthParams(size=64), "Z99", 1)
    with pytest.raises(StratoNetError, match="unknown synthetic compound"):
        render_site(SynthParams(size=64), "A01", 1, treatment="aspirin", dose=1)
    out = tmp_path / "p"
    make_plate(out, wells=2, sites=1, size=64, progress=False)
    with pytest.raises(ConfigError, match="different synthetic plate"):
        make_plate(out, wells=2, sites=1, size=64, seed=5, progress=False)
    make_plate(out, wells=2, sites=1, size=64, seed=5, overwrite=True, progress=False)
    assert json.loads((out / "synth.json").read_text())["seed"] == 5


def test_rerun_resumes_without_rendering(tmp_path, monkeypatch):
    out = tmp_path / "p"
    make_plate(out, wells=2, sites=2, size=64, progress=False)
    before = _digest(out)
    import stratonet.synth.plate as plate_mod

    def boom(*a, **k):
        raise AssertionError("rendered again")

    monkeypatch.setattr(plate_mod, "render_site", boom)
    make_plate(out, wells=2, sites=2, size=64, progress=False)
    assert _digest(out) == before


def test_cli_writes_plate_and_config(tmp_path, capsys):
    out = tmp_path / "cli"
    assert run_cli(["synth", out, "--wells", 3, "--sites", 2, "--seed", 1, "--size", 64, "--plate", "P1",
                    "--compression", "zlib", "--masks"]) == 0
    assert len(list((out / "Images").iterdir())) == 3 * 2 * 5
    assert (out / "synth.config.yaml").exists()
    assert len(list((out / "masks").iterdir())) == 3 * 2 * 2
    assert pd.read_csv(out / "load_data.csv")["Metadata_Plate"].eq("P1").all()


@pytest.mark.parametrize("argv, message", [
    (["--wells", 0], "--wells must be at least 1"),
    (["--wells", 400], "at most 384"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    assert run_cli(["synth", tmp_path / "x", *argv]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_refuses_other_plate_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "x"
    assert run_cli(["synth", out, "--wells", 2, "--sites", 1, "--size", 64]) == 0
    assert run_cli(["synth", out, "--wells", 3, "--sites", 1, "--size", 64]) != 0
    assert "different synthetic plate" in capsys.readouterr().err
    assert run_cli(["synth", out, "--wells", 3, "--sites", 1, "--size", 64, "--overwrite"]) == 0
    assert len(list((out / "Images").iterdir())) == 15


def test_demo_stage(tmp_path, monkeypatch):
    import stratonet.demo.pipeline as demo

    monkeypatch.setattr(demo, "DEMO_SIZE", 64)  # the real size is exercised by `stratonet demo`
    ctx = demo.DemoContext(out=tmp_path)
    demo.stage_synth(ctx)
    assert ctx.synth_dir == tmp_path / "synth" and ctx.outputs["synthetic plate (images, load_data.csv)"] == ctx.synth_dir
    ld = pd.read_csv(ctx.synth_dir / "load_data.csv")
    per_well = ld.groupby("Metadata_Well").first()
    assert len(per_well) == demo.DEMO_WELLS and ld["Metadata_Site"].max() == demo.DEMO_SITES
    assert (per_well["Metadata_control_type"] == "negcon").sum() > demo.DEMO_WELLS / 2
    assert set(per_well["Metadata_pert_iname"]) >= {c.pert_iname for c in COMPOUNDS}
