"""Issue 10, output hygiene: library warnings go to the log file, messages wrap at word boundaries only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.tables import write_table

ROOT = Path(__file__).resolve().parents[2]


def _stratonet(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT / "src"), "PYTHONWARNINGS": "default"}
    code = "import sys; from stratonet.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_output_has_no_library_warnings_and_no_mid_word_wrap(tmp_path):
    rng = np.random.default_rng(0)
    y = ["a"] * 30 + ["b"] * 30 + ["c"] * 2  # class c is smaller than the 3 folds: scikit-learn warns
    df = pd.DataFrame(rng.normal(size=(len(y), 4)) + np.array([[3.0 * (c == "a"), 3.0 * (c == "b"), 0, 0]
                                                                  for c in y]), columns=[f"f{i}" for i in range(4)])
    df["Metadata_moa"] = y
    deep = tmp_path / "a_rather_long_folder_name_for_the_run_outputs" / "with_another_level_below_it"
    prof = tmp_path / "profiles.parquet"
    write_table(df, prof)
    res = _stratonet(["evaluate", "classify", prof, "-o", deep, "--classifiers", "logreg", "--cv", "3",
                      "--n-train", "60", "--permutation-features", "2"], tmp_path)
    assert res.returncode == 0, res.stderr
    text = res.stderr + res.stdout
    assert "Warning:" not in text and "warnings.warn" not in text, text
    assert "library warning(s)" in text and "stratonet.log" in text
    assert "fewer rows than the 3 CV folds: c (2)" in " ".join(text.split())
    log = (deep / "evaluate" / "classify" / "profiles" / "stratonet.log").read_text()
    assert "least populated class" in log
    # Paths are never cut: the output folder appears whole, on one line.
    assert str(deep / "evaluate" / "classify" / "profiles") in text.splitlines()
    for line in text.splitlines():  # a line over 80 columns is one unbreakable word (a path)
        assert len(line) <= 80 or " " not in line.strip(), line
