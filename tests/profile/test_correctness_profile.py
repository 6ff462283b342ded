"""Issue 10, profiles and evaluation: zero-MAD features, infinite values, the NaN advice loop, input folders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from stratonet.core.tables import write_table


def _wells(seed=0, n_dmso=8, compounds=("a", "b", "c", "d"), reps=3):
    """Well-level features: DMSO controls plus compounds with replicates; two MoAs, two compounds each."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_dmso):
        rows.append({"Metadata_pert_iname": "DMSO", "Metadata_control_type": "negcon", "Metadata_moa": None})
    for k, c in enumerate(compounds):
        for r in range(reps):
            rows.append({"Metadata_pert_iname": c, "Metadata_control_type": "trt", "Metadata_moa": f"moa{k // 2}"})
    meta = pd.DataFrame(rows)
    meta["Metadata_Plate"] = "P1"
    meta["Metadata_Well"] = [f"A{i + 1:02d}" for i in range(len(meta))]
    n = len(meta)
    moa = meta["Metadata_moa"].fillna("none")
    feats = pd.DataFrame({f"Cells_F{j}": rng.normal(size=n) + 3.0 * (moa == f"moa{j % 2}") for j in range(6)})
    # Zero MAD in the controls: a count shared by every DMSO well, varying in treated wells.
    feats["Nuclei_Neighbors_NumberOfNeighbors_1"] = np.where(meta["Metadata_control_type"] == "negcon", 2.0,
                                                             rng.integers(0, 6, n).astype(float))
    return pd.concat([meta, feats], axis=1)


def test_zero_mad_features_are_dropped_and_counted(tmp_path, capsys):
    from stratonet.profile import ProfileConfig, run_profile

    df = _wells()
    kept = run_profile(df, ProfileConfig(aggregate_level=None, select="", zero_mad="keep"))
    assert np.nanmax(np.abs(kept["Nuclei_Neighbors_NumberOfNeighbors_1"])) > 1e15  # pycytominer's blow-up
    prof = run_profile(df, ProfileConfig(aggregate_level=None, select=""))
    assert "Nuclei_Neighbors_NumberOfNeighbors_1" not in prof.columns
    assert np.nanmax(np.abs(prof.filter(like="Cells_").to_numpy())) < 1e6
    src = tmp_path / "wells.parquet"
    write_table(df, src)
    assert run_cli(["profile", src, "-o", tmp_path / "p.parquet", "--aggregate", "none", "--select", "none"]) == 0
    err = capsys.readouterr().err
    assert "1 feature(s) with zero MAD" in err and "Nuclei_Neighbors_NumberOfNeighbors_1" in err


def test_infinite_values_are_handled_and_blocklist_acts_first(tmp_path, capsys):
    df = _wells()
    df["Cytoplasm_AreaShape_FormFactor"] = np.linspace(0.1, 0.9, len(df))
    df.loc[[9, 12], "Cytoplasm_AreaShape_FormFactor"] = np.inf
    src = tmp_path / "wells.parquet"
    write_table(df, src)
    out = tmp_path / "p.parquet"
    assert run_cli(["profile", src, "-o", out, "--aggregate", "none", "--normalize", "mad_robustize",
                    "--select", "variance_threshold"]) == 0
    err = capsys.readouterr().err
    assert "2 infinite value(s) in 1 column(s) set to NaN" in err and "Cytoplasm_AreaShape_FormFactor" in err
    prof = pd.read_parquet(out)
    assert not np.isinf(prof.select_dtypes("number").to_numpy()).any()
    # A blocklist removes the column before normalisation ever sees it.
    block = tmp_path / "block.txt"
    block.write_text("Cytoplasm_AreaShape_FormFactor\n")
    assert run_cli(["profile", src, "-o", out, "--aggregate", "none", "--select", "blocklist",
                    "--blocklist", block]) == 0
    err = capsys.readouterr().err
    assert "blocklist (before normalisation)" in err and "infinite value" not in err
    assert "Cytoplasm_AreaShape_FormFactor" not in pd.read_parquet(out).columns


def test_na_cutoff_option_and_impute_end_the_advice_loop(tmp_path, capsys):
    df = _wells(reps=10, n_dmso=20)
    df.loc[25, "Cells_F0"] = np.nan  # 1 of 60 rows (a treated well): under the default 5 % cutoff
    src = tmp_path / "wells.parquet"
    write_table(df, src)
    prof = tmp_path / "p.parquet"
    assert run_cli(["profile", src, "-o", prof, "--aggregate", "none", "--select", "drop_na_columns"]) == 0
    assert "Cells_F0" in pd.read_parquet(prof).columns
    args = ["evaluate", "classify", prof, "-o", tmp_path / "run", "--classifiers", "logreg", "--cv", "0",
            "--n-train", "40", "--permutation-features", "2", "--exclude-class", "none"]
    # The refusal names an option that works.
    pd.read_parquet(prof).assign(Metadata_moa=lambda d: d["Metadata_moa"].fillna("none")).to_parquet(prof)
    assert run_cli(args) != 0
    err = capsys.readouterr().err
    assert "--impute median" in err and "--na-cutoff 0" in err
    assert run_cli(args + ["--impute", "median"]) == 0
    assert "1 missing value(s) imputed" in capsys.readouterr().err
    # ... and so does the other route it names.
    assert run_cli(["profile", src, "-o", prof, "--aggregate", "none", "--select", "drop_na_columns",
                    "--na-cutoff", "0"]) == 0
    assert "Cells_F0" not in pd.read_parquet(prof).columns


def test_profile_takes_the_classical_output_folder(tmp_path, capsys):
    folder = tmp_path / "classical"
    folder.mkdir()
    df = _wells()
    df["Metadata_Site"] = 1
    write_table(df, folder / "site.parquet")
    (folder / "extract_classical.config.yaml").write_text("features: all\n")
    (folder / "site.manifest.json").write_text("{}")
    out = tmp_path / "p.parquet"
    assert run_cli(["profile", folder, "-o", out, "--aggregate", "well", "--select", "none"]) == 0
    assert "site.parquet" in capsys.readouterr().err
    assert len(pd.read_parquet(out)) == len(df)
    write_table(df.assign(ObjectNumber=1), folder / "single_cell.parquet")
    assert run_cli(["profile", folder, "-o", out, "--aggregate", "well", "--select", "none"]) == 0
    assert "single_cell.parquet" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(["profile", empty, "-o", out]) != 0
    err = capsys.readouterr().err
    assert "single_cell.parquet" in err and "Traceback" not in err


def test_retrieval_says_how_many_treatments_were_usable(tmp_path, capsys):
    df = _wells(compounds=("a", "b", "c"))  # moa1 has one compound only: not usable for NSC
    src = tmp_path / "wells.parquet"
    write_table(df.drop(columns=["Nuclei_Neighbors_NumberOfNeighbors_1"]), src)
    assert run_cli(["evaluate", "retrieval", src, "-o", tmp_path / "run", "--null-size", "100"]) == 0
    err = capsys.readouterr().err
    assert "3 treatments in the table" in err
    assert "usable for NSC" in err
