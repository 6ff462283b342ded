"""A one-plate screen with controls and a dose series and no MoA column: every evaluate command either works or
stops with one line that names the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli


@pytest.fixture
def one_plate(tmp_path):
    """48 wells of one plate: 8 negcon, 4 poscon, 9 doses x 4 wells; no compound or MoA column."""
    rng = np.random.default_rng(0)
    kinds = ["negcon"] * 8 + ["poscon"] * 4 + ["trt"] * 36
    dose = [0] * 8 + [10] * 4 + [d for d in range(1, 10) for _ in range(4)]
    df = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": [f"{'ABCD'[w // 12]}{w % 12 + 1:02d}" for w in range(48)],
                       "Metadata_control_type": kinds, "Metadata_dose_index": dose,
                       "Metadata_treatment_class": [f"dose_{d}" for d in dose]})
    X = rng.normal(size=(48, 6)) + np.asarray(dose)[:, None] * 0.3
    df = pd.concat([df, pd.DataFrame(X, columns=[f"GFP_high_{i:04d}" for i in range(6)])], axis=1)
    path = tmp_path / "profiles.parquet"
    df.to_parquet(path)
    return path


def test_missing_label_lists_the_columns(one_plate, tmp_path, capsys):
    assert run_cli(["evaluate", "classify", one_plate, "-o", tmp_path / "run", "--label", "Metadata_moa"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "Metadata_treatment_class" in err and "--label COLUMN" in err and "Traceback" not in err


def test_group_by_one_plate_names_the_column_and_suggests_wells(one_plate, tmp_path, capsys):
    assert run_cli(["evaluate", "classify", one_plate, "-o", tmp_path / "run", "--label", "Metadata_treatment_class",
                    "--group-by", "Metadata_Plate", "--cv", "0"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "--group-by Metadata_Plate has one value (P1)" in err and "--group-by Metadata_Well" in err


def test_small_classes_warning_names_all_or_counts_the_rest(one_plate, tmp_path, capsys):
    assert run_cli(["evaluate", "classify", one_plate, "-o", tmp_path / "run", "--label", "Metadata_treatment_class",
                    "--classifiers", "logreg", "--cv", "5", "--test-size", "0.3", "--permutation-features", "1",
                    "--n-train", "60"]) == 0
    out = capsys.readouterr()
    text = (out.out + out.err).replace("\n", " ")
    assert "10 class(es) have fewer rows than the 5 CV folds" in text and "and 0 more" not in text
    assert all(f"dose_{d} (4)" in text for d in range(1, 10))


def test_retrieval_without_treatment_says_what_to_pass(one_plate, tmp_path, capsys):
    assert run_cli(["evaluate", "retrieval", one_plate, "-o", tmp_path / "run"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "--treatment COLUMN" in err and "Metadata_dose_index" in err


def test_retrieval_with_treatment_scores_activity_and_names_the_skips(one_plate, tmp_path, capsys):
    assert run_cli(["evaluate", "retrieval", one_plate, "-o", tmp_path / "run", "--treatment",
                    "Metadata_treatment_class", "--null-size", "200"]) == 0
    out = capsys.readouterr()
    text = (out.out + out.err).replace("\n", " ")
    assert "map_activity: mAP" in text and "skipped" in text and "--label COLUMN" in text


def test_retrieval_that_scores_nothing_exits_2(one_plate, tmp_path, capsys):
    df = pd.read_parquet(one_plate)
    df = df[df["Metadata_control_type"] != "negcon"]  # no negcon: no activity; no class column: nothing else
    df.to_parquet(one_plate)
    assert run_cli(["evaluate", "retrieval", one_plate, "-o", tmp_path / "run", "--treatment",
                    "Metadata_treatment_class", "--null-size", "200"]) == 2
    assert "scored no metric" in capsys.readouterr().err


def test_assay_finds_the_dose_index_and_fits_one_curve(one_plate, tmp_path, capsys):
    assert run_cli(["evaluate", "assay", one_plate, "-o", tmp_path / "run", "--readout", "diff", "--no-map",
                    "--n-boot", "20"]) == 0
    out = capsys.readouterr()
    text = (out.out + out.err).replace("\n", " ")
    assert "(all sample wells): EC50" in text and "no compound column: one dose curve" in text
