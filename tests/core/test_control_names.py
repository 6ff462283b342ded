"""One way to name controls (--negcon/--poscon, --control-column, --controls FILE) for index, profile, evaluate,
report; errors that list what was found; platemap joins that never leave two versions of a column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_cli
from stratonet.core.controlnames import ControlNames, apply_control_names, read_control_file
from stratonet.core.errors import ConfigError
from stratonet.core.tables import read_table

KINDS = ["negative_control"] * 8 + ["positive_control"] * 4 + ["dose_series"] * 12


def _features(seed=0):
    """24 wells x 2 sites of one plate, controls named as BBBC013 names them."""
    rng = np.random.default_rng(seed)
    rows = [{"Metadata_Plate": "P1", "Metadata_Well": f"{'AB'[w // 12]}{w % 12 + 1:02d}", "Metadata_Site": s,
             "Metadata_control_type": KINDS[w]} for w in range(24) for s in (1, 2)]
    df = pd.DataFrame(rows)
    X = rng.normal(size=(len(df), 5)) + (df["Metadata_control_type"] == "positive_control").to_numpy()[:, None] * 3
    return pd.concat([df, pd.DataFrame(X, columns=[f"GFP_high_{i:04d}" for i in range(5)])], axis=1)


def test_apply_control_names_rewrites_and_says_so():
    df, note = apply_control_names(_features(), ControlNames(negcon=("negative_control",),
                                                             poscon=("positive_control",)))
    assert df["Metadata_control_type"].value_counts().to_dict() == {"dose_series": 24, "negcon": 16, "poscon": 8}
    assert "negative_control -> negcon (16 rows)" in note and "positive_control -> poscon (8 rows)" in note
    same, note = apply_control_names(_features(), ControlNames())
    assert note == "" and same["Metadata_control_type"].iloc[0] == "negative_control"


def test_another_column_writes_control_type_and_no_stale_values():
    df = _features().assign(Metadata_compound=lambda d: d["Metadata_control_type"].map(
        {"negative_control": "DMSO", "positive_control": "wortmannin", "dose_series": "LY294002"}))
    df["Metadata_control_type"] = "negcon"  # stale: must not survive
    out, note = apply_control_names(df, ControlNames("Metadata_compound", ("DMSO",), ("wortmannin",)))
    assert out["Metadata_control_type"].value_counts().to_dict() == {"trt": 24, "negcon": 16, "poscon": 8}
    assert "replaced" in note


def test_missing_values_and_columns_are_named():
    with pytest.raises(ConfigError) as err:
        apply_control_names(_features(), ControlNames(negcon=("DMSO",)))
    msg = str(err.value)
    assert "negative_control (16)" in msg and "dose_series (24)" in msg and "--negcon" in msg
    with pytest.raises(ConfigError, match=r"Metadata_compound not found .*Metadata_control_type.*--control-column"):
        apply_control_names(_features(), ControlNames(column="Metadata_compound"))


def test_control_file(tmp_path):
    f = tmp_path / "controls.csv"
    f.write_text("value,control_type\nnegative_control,negcon\npositive_control,poscon\ndose_series,trt\n")
    assert read_control_file(f) == ControlNames(negcon=("negative_control",), poscon=("positive_control",))
    bad = tmp_path / "bad.csv"
    bad.write_text("name,kind\nx,negcon\n")
    with pytest.raises(Exception, match="needs columns value and control_type"):
        read_control_file(bad)


def test_profile_without_names_lists_values_and_the_fix(tmp_path, capsys):
    src = tmp_path / "f.parquet"
    _features().to_parquet(src)
    assert run_cli(["profile", src, "-o", tmp_path / "p.parquet"]) == 2
    err = capsys.readouterr().err
    assert "negative_control (8)" in err and "--negcon VALUE" in err and "Traceback" not in err


def test_profile_evaluate_with_the_plates_own_names(tmp_path, capsys):
    src, prof = tmp_path / "f.parquet", tmp_path / "p.parquet"
    _features().to_parquet(src)
    assert run_cli(["profile", src, "-o", prof, "--negcon", "negative_control", "--poscon", "positive_control",
                    "--select", "none"]) == 0
    p = read_table(prof)
    assert p["Metadata_control_type"].value_counts().to_dict() == {"dose_series": 12, "negcon": 8, "poscon": 4}
    assert "negative_control -> negcon" in capsys.readouterr().err
    ctl = tmp_path / "controls.csv"
    ctl.write_text("value,control_type\nnegcon,negcon\nposcon,poscon\n")
    assert run_cli(["evaluate", "assay", prof, "-o", tmp_path / "run", "--controls", ctl, "--readout", "diff",
                    "--no-map", "--n-boot", "20", "--p-value", "gaussian"]) == 0


def test_profile_platemap_replaces_control_type_and_says_so(tmp_path, capsys):
    src = tmp_path / "f.parquet"
    _features().assign(Metadata_control_type="trt").to_parquet(src)
    pm = tmp_path / "pm.csv"
    pd.DataFrame({"plate": "P1", "well": [f"{'AB'[w // 12]}{w % 12 + 1:02d}" for w in range(24)],
                  "control_type": KINDS}).to_csv(pm, index=False)
    out = tmp_path / "p.parquet"
    assert run_cli(["profile", src, "-o", out, "--platemap", pm, "--negcon", "negative_control", "--poscon",
                    "positive_control", "--select", "none"]) == 0
    err = capsys.readouterr().err
    assert "platemap replaces the profiles' Metadata_control_type" in err
    p = read_table(out)
    assert "Metadata_plate" not in p.columns and (p["Metadata_control_type"] == "negcon").sum() == 8


def test_index_platemap_with_a_plate_column_adds_no_second_plate_column(tmp_path, capsys):
    img = tmp_path / "a.tif"
    tifffile.imwrite(img, np.zeros((8, 8), np.uint16))
    ld = tmp_path / "load_data.csv"
    pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": ["A01", "A02"], "Metadata_Site": 1,
                  "Metadata_control_type": "x", "FileName_OrigDNA": img.name,
                  "PathName_OrigDNA": str(tmp_path)}).to_csv(ld, index=False)
    pm = tmp_path / "pm.csv"
    pd.DataFrame({"plate": ["P1", "P1", "P2"], "well": ["A01", "A02", "A01"],
                  "control_type": ["negative_control", "positive_control", "x"]}).to_csv(pm, index=False)
    out = tmp_path / "index.parquet"
    assert run_cli(["index", ld, "-o", out, "--platemap", pm, "--negcon", "negative_control", "--poscon",
                    "positive_control"]) == 0
    idx = read_table(out)
    assert "Metadata_plate" not in idx.columns and list(idx["Metadata_control_type"]) == ["negcon", "poscon"]
    assert "platemap replaces the index's Metadata_control_type" in capsys.readouterr().err
    other = tmp_path / "pm2.csv"
    pd.DataFrame({"plate": ["Q9"], "well": ["A01"], "moa": ["m"]}).to_csv(other, index=False)
    assert run_cli(["index", ld, "-o", tmp_path / "i2.parquet", "--platemap", other]) == 2
    assert "no row for plate 'P1' (its plates: Q9)" in capsys.readouterr().err
