"""Issue-2 acceptance across modules: a synthetic plate indexed three ways, and YAML options reaching a command."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import run_cli

from stratonet.index.schema import channels_of


@pytest.fixture(scope="module")
def plate_96x4(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plate") / "p"
    assert run_cli(["synth", out, "--wells", 96, "--sites", 4, "--seed", 3, "--size", 64, "--plate", "P96"]) == 0
    return out


def _check_384(index: pd.DataFrame) -> None:
    assert len(index) == 384
    assert sorted(channels_of(index)) == sorted(["DNA", "ER", "RNA", "AGP", "Mito"])
    assert index[["Metadata_Plate", "Metadata_Well", "Metadata_Site"]].drop_duplicates().shape[0] == 384
    assert index["Metadata_Well"].nunique() == 96 and set(index["Metadata_Site"].astype(int)) == {1, 2, 3, 4}
    for ch in channels_of(index):
        assert index[f"Path_{ch}"].map(lambda p: Path(p).is_file()).all()


def test_synthetic_96x4_plate_indexes_to_384_sites_from_loaddata(plate_96x4, tmp_path):
    out = tmp_path / "index.parquet"
    assert run_cli(["index", plate_96x4 / "load_data.csv", "-o", out]) == 0
    index = pd.read_parquet(out)
    _check_384(index)
    # treatment columns from the synth load_data travel into the index; DMSO is the majority
    assert (index["Metadata_control_type"] == "negcon").mean() > 0.5


def test_synthetic_plate_indexes_from_phenix_folder_with_jump_metadata_join(plate_96x4, tmp_path):
    out = tmp_path / "index.parquet"
    pm = plate_96x4 / "platemap"
    code = run_cli([
        "index", plate_96x4 / "Images", "--layout", "phenix", "--plate", "P96", "-o", out,
        "--barcode-platemap", pm / "barcode_platemap.csv", "--platemap", next(pm.glob("*_platemap.txt")),
        "--compound-metadata", pm / "compound_metadata.tsv",
    ])
    assert code == 0
    index = pd.read_parquet(out)
    _check_384(index)
    # the phenix channel map (ch5 = DNA) picks the same files as the generator's load_data.csv
    ld = pd.read_csv(plate_96x4 / "load_data.csv")
    row = ld.iloc[0]
    match = index[(index.Metadata_Well == row.Metadata_Well) & (index.Metadata_Site.astype(int) == row.Metadata_Site)]
    assert Path(match["Path_DNA"].iloc[0]).name == row["FileName_OrigDNA"]
    truth = ld[["Metadata_Well", "Metadata_Site", "Metadata_pert_iname"]].astype(str)
    got = index.assign(Metadata_Site=index["Metadata_Site"].astype(str))
    joined = got.merge(truth, on=["Metadata_Well", "Metadata_Site"], suffixes=("", "_truth"))
    assert len(joined) == 384
    assert (joined["Metadata_pert_iname"] == joined["Metadata_pert_iname_truth"]).all()


def test_yaml_config_values_reach_the_command_and_are_recorded(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("synth:\n  wells: 3\n  sites: 1\n  size: 64\n  seed: 7\n")
    out = tmp_path / "plate"
    assert run_cli(["--config", cfg, "synth", out]) == 0
    ld = pd.read_csv(out / "load_data.csv")
    assert len(ld) == 3
    recorded = yaml.safe_load(next(out.glob("*.config.yaml")).read_text())
    assert recorded["options"]["wells"] == 3 and recorded["options"]["seed"] == 7
    # the command line still wins over the file
    out2 = tmp_path / "plate2"
    assert run_cli(["--config", cfg, "synth", out2, "--wells", 2]) == 0
    assert len(pd.read_csv(out2 / "load_data.csv")) == 2
