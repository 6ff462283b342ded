"""Cell images of a one-compound dose series (no compound column) are grouped by dose, as the plate maps are."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratonet.report.plate_section import representative_sites


def test_a_dose_series_without_compound_column_is_grouped_by_dose():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": [f"A{i:02d}" for i in range(1, 7)],
                       "Metadata_Site": 1, "Metadata_dose_index": [0, 0, 1, 1, 2, 2],
                       "Cells_A": rng.normal(size=6), "Cells_B": rng.normal(size=6)})
    sites = df[["Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_dose_index"]]
    reps = representative_sites(df, sites)
    assert len(reps) == 3 and reps["n_sites"].tolist() == [2, 2, 2]
    assert all("dose index" in t for t in reps["treatment"])
