"""Issue 27: options and degenerate inputs of profile and evaluate (D6, D7, D8, D9, D14, D15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from test_reliability_runs import tiny_index


@pytest.mark.parametrize("value", ["8.7", "true"])
def test_d6_yaml_integer_option_is_not_truncated(tmp_path, capsys, value):
    idx = tiny_index(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"extract:\n  pixel:\n    size: {value}\n")
    assert run_cli(["--config", cfg, "extract", "pixel", idx, "-o", tmp_path / "p.parquet"]) == 2
    err = capsys.readouterr().err
    assert "bad value for 'size'" in err and "Traceback" not in err
    assert not (tmp_path / "p.parquet").exists()
    cfg.write_text("extract:\n  pixel:\n    size: 4\n")  # an integer stays accepted
    assert run_cli(["--config", cfg, "extract", "pixel", idx, "-o", tmp_path / "p.parquet"]) == 0


def _wide(tmp_path, n_rows: int = 20, n_classes: int = 5, plates: int = 1):
    rng = np.random.default_rng(0)
    y = np.arange(n_rows) % n_classes
    df = pd.DataFrame(rng.normal(size=(n_rows, 6)) + y[:, None], columns=[f"f{i}" for i in range(6)])
    df.insert(0, "Metadata_moa", [f"m{v}" for v in y])
    df.insert(0, "Metadata_Plate", [f"P{i % plates}" for i in range(n_rows)])
    p = tmp_path / "wide.parquet"
    df.to_parquet(p)
    return p


def test_d7_test_split_smaller_than_the_classes_is_one_line(tmp_path, capsys):
    p = _wide(tmp_path)
    assert run_cli(["evaluate", "classify", p, "-o", tmp_path / "r", "--classifiers", "logreg", "--cv", "0"]) == 2
    err = capsys.readouterr().err
    assert "5 classes" in err and "--test-size" in err and "internal error" not in err and "Traceback" not in err
    assert run_cli(["evaluate", "classify", p, "-o", tmp_path / "r", "--classifiers", "logreg", "--cv", "0",
                    "--test-size", "0.3"]) == 0


def test_d15_too_few_groups_is_refused_before_fitting(tmp_path, capsys, monkeypatch):
    import stratonet.evaluate.classify as classify

    p = _wide(tmp_path, n_rows=60, n_classes=3, plates=6)
    fitted = []
    real = classify.make_classifier
    monkeypatch.setattr(classify, "make_classifier", lambda *a, **k: fitted.append(a) or real(*a, **k))
    assert run_cli(["evaluate", "classify", p, "-o", tmp_path / "r", "--classifiers", "logreg",
                    "--group-by", "Metadata_Plate"]) == 2
    err = capsys.readouterr().err
    assert "found 6" in err and "--cv 6" in err and "leave one group out" in err and not fitted
    assert run_cli(["evaluate", "classify", p, "-o", tmp_path / "r", "--classifiers", "logreg",
                    "--group-by", "Metadata_Plate", "--cv", "6", "--n-train", "3000"]) == 0
    out = capsys.readouterr().err
    assert "CV pooled accuracy" in out and "drawn with replacement" in out


def _sites(tmp_path, negcon_wells: int = 1):
    """A site table: 2 plates x 6 wells, ``negcon_wells`` negcon wells per plate."""
    rng = np.random.default_rng(2)
    rows = []
    for plate in ("P1", "P2"):
        for w in range(6):
            rows.append({"Metadata_Plate": plate, "Metadata_Well": f"B{w + 1:02d}", "Metadata_Site": 1,
                         "Metadata_control_type": "negcon" if w < negcon_wells else "trt",
                         **{f"Cells_F{i}": rng.normal() for i in range(4)}})
    p = tmp_path / "sites.parquet"
    pd.DataFrame(rows).to_parquet(p)
    return p


def test_d8_one_negcon_well_blames_normalisation_not_selection(tmp_path, capsys):
    src = _sites(tmp_path, negcon_wells=1)
    for select in ([], ["--select", "none"]):
        assert run_cli(["profile", src, "-o", tmp_path / "p.parquet", *select]) == 2
        err = capsys.readouterr().err
        assert "zero spread (MAD)" in err and "1 (P1)" in err and "feature selection is not the cause" in err
        assert not (tmp_path / "p.parquet").exists()
    assert run_cli(["profile", _sites(tmp_path, negcon_wells=3), "-o", tmp_path / "p.parquet"]) == 0


def test_d9_profile_output_name_checked_before_computing(tmp_path, capsys, monkeypatch):
    import stratonet.profile as profile

    monkeypatch.setattr(profile, "run_profile", lambda *a, **k: pytest.fail("computed before the name check"))
    assert run_cli(["profile", _sites(tmp_path, 3), "-o", tmp_path / "noext"]) == 2
    assert "unknown table format" in capsys.readouterr().err


def test_d9_d14_identifiers_are_never_features_and_crops_stay_apart(tmp_path):
    """D9: ObjectNumber was profiled as a feature; D14: site aggregation of a crop set's classical output merged
    the crops of a field, and location / bounding-box columns were profiled."""
    from stratonet.profile import ProfileConfig, run_profile

    rng = np.random.default_rng(3)
    n = 12
    df = pd.DataFrame({"Metadata_Plate": "P", "Metadata_Well": ["A01"] * 6 + ["A02"] * 6, "Metadata_Site": 1,
                       "Metadata_ObjectNumber": list(range(1, 7)) * 2,
                       "Metadata_control_type": ["negcon"] * 6 + ["trt"] * 6,
                       "ObjectNumber": 1, "Count_Cells": 1, "Nuclei_Location_Center_X": rng.uniform(0, 99, n),
                       "Cells_AreaShape_BoundingBoxMaximum_X": rng.integers(0, 99, n),
                       "Cells_AreaShape_Area": rng.normal(100, 10, n), "Cells_Intensity_Mean_DNA": rng.normal(1, .1, n)})
    prof = run_profile(df, ProfileConfig(aggregate_level="site", select="", normalize_method="none"))
    assert len(prof) == n  # one row per crop, not per field
    feats = [c for c in prof.columns if not c.startswith("Metadata_")]
    assert set(feats) == {"Count_Cells", "Cells_AreaShape_Area", "Cells_Intensity_Mean_DNA"}
    # a CytoTable-style single-cell table (Metadata_ObjectNumber numbers the cells): cells aggregate per field
    cells = df.drop(columns=["Count_Cells", "ObjectNumber"])
    assert len(run_profile(cells, ProfileConfig(aggregate_level="site", select="", normalize_method="none"))) == 2


def test_d9_a_plate_format_inferred_from_one_well_is_named(capsys):
    from stratonet.index.plate_format import check_wells

    idx = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": ["A01", "B02", "P24", "A25"]})
    assert check_wells(idx, source="idx.csv") == {"P1": 1536}
    err = capsys.readouterr().err
    assert "A25" in err and "--plate-format 384" in err
    wide = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": ["A01", "B02", "A13", "B14", "P24"]})
    assert check_wells(wide, source="idx.csv") == {"P1": 384}  # three wells beyond a 96-well plate: no note
    assert "note" not in capsys.readouterr().err
