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
