"""evaluate taps: per-tap CV accuracy and copairs mAP rank informative taps above uninformative ones."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import report_fixtures as rf
from conftest import run_cli
from stratonet.core.errors import StratoNetError
from stratonet.evaluate.taps import score_taps, taps_of


def test_taps_of_groups_by_tap():
    cols = ["DNA_low_0000", "DNA_low_0001", "AGP_low_0000", "DNA_high_0000", "DNA_layer3_1_0007",
            "Cells_Intensity_MeanIntensity_DNA", "Metadata_Well"]
    g = taps_of(cols)
    assert g == {"low": ["DNA_low_0000", "DNA_low_0001", "AGP_low_0000"], "high": ["DNA_high_0000"],
                 "layer3_1": ["DNA_layer3_1_0007"]}


@pytest.fixture(scope="module")
def deep_table():
    meta = rf.plate_metadata()
    return rf.deep_table(meta, {"low": 0.0, "medium": 0.6, "high": 2.5}, seed=4)


def test_informative_tap_wins(deep_table):
    feats = [c for c in deep_table.columns if not c.startswith("Metadata_")]
    table, comparison = score_taps(deep_table, feats, null_size=500)
    t = table.set_index("tap")
    assert comparison.startswith("all non-negcon vs negcon")  # the fixture has no poscon rows
    assert t.loc["high", "accuracy"] > 0.9 and t.loc["high", "mAP"] > 0.8
    assert t.loc["high", "accuracy"] > t.loc["low", "accuracy"] + 0.2
    assert t.loc["high", "mAP"] > t.loc["low", "mAP"] + 0.2
    assert set(t["n_features"]) == {16} and set(t["channels"]) == {"AGP|DNA"}
    # compounds have replicate wells: activity mAP is per treatment (compound + dose)
    assert set(t["map_grouping"]) == {"Metadata_pert_iname+Metadata_concentration"}


def test_single_well_treatments_group_by_class(deep_table):
    df = deep_table.copy()
    df["Metadata_pert_iname"] = [f"c{i}" if t == "trt" else "DMSO" for i, t in enumerate(df["Metadata_control_type"])]
    feats = [c for c in df.columns if not c.startswith("Metadata_")]
    table, _ = score_taps(df, feats, null_size=200)
    assert set(table["map_grouping"]) == {"Metadata_tap_class"}
    assert table["mAP"].notna().all()


def test_poscon_vs_negcon_subset(deep_table):
    df = deep_table.copy()
    df.loc[df["Metadata_moa"] == "tubulin", "Metadata_control_type"] = "poscon"
    feats = [c for c in df.columns if not c.startswith("Metadata_")]
    table, comparison = score_taps(df, feats, null_size=500)
    assert comparison == "poscon vs negcon"
    n_expected = int(df["Metadata_control_type"].isin(["poscon", "negcon"]).sum())
    assert set(table["n_profiles"]) == {n_expected}


def test_no_tap_columns_is_error(deep_table):
    df = deep_table.rename(columns=lambda c: c if c.startswith("Metadata_") else "x" + c.replace("_", ""))
    with pytest.raises(StratoNetError, match="no deep-feature columns"):
        score_taps(df, [c for c in df.columns if not c.startswith("Metadata_")])


def test_taps_cli_label_mode(deep_table, tmp_path):
    path = rf.write(deep_table, tmp_path / "deep.parquet", feature_set="deep", model="stratonet50",
                    weights="untrained (seed 0)")
    assert run_cli(["evaluate", "taps", path, "-o", tmp_path / "run", "--label", "Metadata_moa", "--folds", "3",
                    "--null-size", "200"]) == 0
    out = tmp_path / "run" / "evaluate" / "taps" / "stratonet50"
    t = pd.read_csv(out / "tap_selection.csv")
    assert list(t["tap"]) == ["low", "medium", "high"]
    assert {"tap", "accuracy", "mAP"} <= set(t.columns)
    assert t["accuracy"].between(0, 1).all() and set(t["folds"]) == {3}
    assert (out / "tap_selection.png").stat().st_size > 1000
    m = json.loads((out / "metrics.json").read_text())
    assert m["best_tap"] == "high" and m["provenance"]["weights"] == "untrained (seed 0)"
    assert np.isclose(t.set_index("tap").loc["high", "accuracy"], 1.0)
