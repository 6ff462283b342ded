"""The same plate scored twice gives the same well scores (liblinear's dual solver is seeded)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratonet.assay.config import AssayConfig
from stratonet.assay.evaluate import evaluate_assay


def _wide_plate(seed: int = 0) -> pd.DataFrame:
    """More features than control wells, so the logistic readouts use liblinear's dual (randomised) solver."""
    rng = np.random.default_rng(seed)
    role = ["negcon"] * 8 + ["poscon"] * 4 + ["trt"] * 12
    level = np.r_[np.zeros(8), np.full(4, 2.0), np.linspace(0, 2, 12)]
    df = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": [f"W{i:02d}" for i in range(24)],
                       "Metadata_control_type": role})
    for j in range(40):
        df[f"Cells_F{j:02d}"] = level * (j < 5) + rng.normal(0, 1, 24)
    return df


def test_scores_are_the_same_on_a_rerun():
    df = _wide_plate()
    cfg = AssayConfig(n_boot=10, with_map=False, p_method="gaussian")
    a, b = evaluate_assay(df, cfg).wells, evaluate_assay(df, cfg).wells
    score_cols = [c for c in a.columns if a[c].dtype.kind == "f"]
    assert score_cols
    pd.testing.assert_frame_equal(a, b)
