"""BBBC013 end to end on the defaults: `profile` then `evaluate assay`, nothing chosen by hand (issue 25).

The input is tests/data/bbbc013_classical_wells.parquet: the plate's 96 well profiles made by `index -> extract
classical -> profile --select drop_na_columns` (every non-texture feature; see tests/data/README.md), so the test
replays the default `profile` (normalisation, default selection with its separation guard) and the default
`evaluate assay` (nested-CV readout beside the fixed reference readout) on cached features.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli
from stratonet.tables import read_provenance

TABLE = Path(__file__).parent / "data" / "bbbc013_classical_wells.parquet"
PLATE = "ExampleSBS_1049"
BEST_ROUTE = 0.709  # Z' of the best route measured in issue 25 (classical, logistic top 25, no selection)


def test_default_route_reaches_the_best_route_on_bbbc013(tmp_path):
    prof = tmp_path / "profiles.parquet"
    assert run_cli(["profile", TABLE, "-o", prof]) == 0
    sel = read_provenance(prof)["profile"]["selection"]
    assert "Cells_Correlation_Correlation_GFP_DNA" in sel["protected"]  # the default selection removes it
    assert sel["cost"] <= sel["margin"]
    assert run_cli(["evaluate", "assay", prof, "-o", tmp_path / "run", "--name", "classical", "--no-map"]) == 0
    m = json.loads((tmp_path / "run" / "evaluate" / "assay" / "classical" / "metrics.json").read_text())
    p = m["plates"][PLATE]
    nested = p["readouts"]["nested"]
    assert nested["z_prime"] >= BEST_ROUTE - 0.05
    assert nested["z_prime_ci95"][0] < nested["z_prime"] < nested["z_prime_ci95"][1]
    assert {"top_k", "C", "scaling"} <= set(nested["settings"])
    assert "reference" in p["readouts"]
    assert m["dose_column"] == "Metadata_dose_index" and p["dose"]["PI3Ki"]["status"] == "ok"
    assert "dose_skipped" not in m["summary"]
