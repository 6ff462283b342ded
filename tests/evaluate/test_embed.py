"""evaluate embed: PCA variance against an independent SVD, seeded UMAP, outputs per the contract."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import report_fixtures as rf
from conftest import run_cli
from stratonet.evaluate.embed import pca_variance, umap_embedding


def test_pca_variance_matches_svd():
    x = np.random.default_rng(3).normal(size=(40, 12)) * np.arange(1, 13)
    t = pca_variance(x)
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    np.testing.assert_allclose(t["explained"], s**2 / (s**2).sum(), rtol=1e-6)
    assert list(t["component"]) == list(range(1, 13))
    assert np.all(np.diff(t["cumulative"]) >= 0) and t["cumulative"].iloc[-1] == pytest.approx(1.0)


def test_umap_is_seeded_and_needs_profiles():
    x = np.random.default_rng(0).normal(size=(20, 5))
    a, b = umap_embedding(x, seed=1, n_neighbors=5), umap_embedding(x, seed=1, n_neighbors=5)
    assert a.shape == (20, 2)
    np.testing.assert_allclose(a, b)
    from stratonet.core.errors import StratoNetError

    with pytest.raises(StratoNetError):
        umap_embedding(x[:3])


@pytest.fixture(scope="module")
def embed_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("embed")
    meta = rf.plate_metadata()
    table = rf.write(rf.deep_table(meta, {"high": 2.5}), root / "features" / "deep.parquet",
                     feature_set="deep", model="stratonet50", weights="untrained (seed 0)")
    code = run_cli(["evaluate", "embed", table, "-o", root / "run", "--color-by", "Metadata_moa", "--seed", "0"])
    return root, code, meta


def test_embed_cli_writes_contract_files(embed_run):
    root, code, meta = embed_run
    assert code == 0
    out = root / "run" / "evaluate" / "embed" / "deep"  # name from the table's provenance
    for f in ("pca_variance.csv", "pca_variance.png", "umap.csv", "umap.png", "metrics.json"):
        assert (out / f).stat().st_size > 0, f
    pca = pd.read_csv(out / "pca_variance.csv")
    assert list(pca.columns) == ["component", "explained", "cumulative"]
    umap = pd.read_csv(out / "umap.csv")
    assert len(umap) == len(meta) and {"UMAP_1", "UMAP_2", "Metadata_moa", "Metadata_Well"} <= set(umap.columns)
    m = json.loads((out / "metrics.json").read_text())
    assert m["feature_set"] == "deep" and m["provenance"]["weights"] == "untrained (seed 0)"
    assert m["n_profiles"] == len(meta) and m["n_classes"] == 4
    # the four classes carry strong, distinct signal: they must separate in the UMAP
    assert m["silhouette_umap"] > 0.3
    assert (root / "run" / "evaluate" / "embed" / "evaluate_embed.config.yaml").exists()  # its own subfolder
    assert not (root / "run" / "evaluate_embed.config.yaml").exists()


def test_embed_unknown_colour_column_is_one_line_error(embed_run, capsys):
    root, _, _ = embed_run
    table = root / "features" / "deep.parquet"
    assert run_cli(["evaluate", "embed", table, "-o", root / "run2", "--color-by", "Metadata_nope"]) != 0
    err = capsys.readouterr().err
    assert "Metadata_nope" in err and "deep.parquet" in err and "Traceback" not in err
