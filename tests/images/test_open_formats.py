"""Open formats besides OME-Zarr input (issue 29): AnnData .h5ad export, vendor files through bioio, export
errors, and the report viewer reading an OME-Zarr site through the same reader as a TIFF."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import one_line_error, run_cli

from stratonet.images.io import read_image

h5py = pytest.importorskip("h5py")

def profiles():
    return pd.DataFrame({
        "Metadata_Plate": ["P1"] * 3, "Metadata_Well": ["A01", "A02", None], "Metadata_Site": [1, 2, 3],
        "Metadata_concentration": [0.1, np.nan, 1.0], "Cells_AreaShape_Area": [10.5, 20.0, 30.25],
        "DNA_high_0000": np.array([0.5, -1.0, 2.0], dtype=np.float32)})

def _decode(node):
    """One AnnData obs column read back with h5py (categoricals decoded)."""
    if isinstance(node, h5py.Group):
        cats = [c.decode() if isinstance(c, bytes) else c for c in node["categories"][()]]
        return [None if k < 0 else cats[k] for k in node["codes"][()]]
    return list(node[()])

def test_h5ad_holds_features_as_x_and_metadata_as_obs(tmp_path):
    src = tmp_path / "profiles.parquet"
    profiles().to_parquet(src)
    out = tmp_path / "profiles.h5ad"
    assert run_cli(["export", src, "-o", out]) == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["encoding-type"] == "anndata"
        np.testing.assert_array_equal(f["X"][()], profiles()[["Cells_AreaShape_Area", "DNA_high_0000"]]
                                      .to_numpy(np.float32))
        var = [v.decode() for v in f["var"]["_index"][()]]
        assert var == ["Cells_AreaShape_Area", "DNA_high_0000"]
        obs = f["obs"]
        assert [c.decode() if isinstance(c, bytes) else c for c in obs.attrs["column-order"]] == [
            "Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_concentration"]
        assert _decode(obs["Metadata_Well"]) == ["A01", "A02", None]
        assert _decode(obs["Metadata_Site"]) == [1, 2, 3]
        np.testing.assert_array_equal(_decode(obs["Metadata_concentration"]), [0.1, np.nan, 1.0])

def test_h5ad_reads_in_anndata_when_installed(tmp_path):
    anndata = pytest.importorskip("anndata")  # not in the test environment: its zarr-3 releases need pandas < 3
    out = tmp_path / "p.h5ad"
    profiles().to_parquet(tmp_path / "p.parquet")
    assert run_cli(["export", tmp_path / "p.parquet", "-o", out]) == 0
    ad = anndata.read_h5ad(out)
    assert ad.shape == (3, 2) and list(ad.var_names) == ["Cells_AreaShape_Area", "DNA_high_0000"]

def test_export_refusals_are_one_line_errors(tmp_path, capsys):
    src = tmp_path / "p.parquet"
    profiles().to_parquet(src)
    assert run_cli(["export", src, "-o", tmp_path / "p.h5ad"]) == 0
    assert run_cli(["export", src, "-o", tmp_path / "p.h5ad"]) == 2
    one_line_error(capsys, "exists; pass --overwrite")
    assert run_cli(["export", src, "-o", tmp_path / "p.txt"]) == 2
    one_line_error(capsys, ".zarr", ".h5ad")
    meta = profiles()[["Metadata_Plate", "Metadata_Well", "Metadata_Site"]].fillna("A03")
    meta.loc[2, "Metadata_Plate"] = "P2"
    meta["Path_DNA"] = str(tmp_path / "x.tiff")
    meta.to_parquet(tmp_path / "idx.parquet")
    assert run_cli(["export", tmp_path / "idx.parquet", "-o", tmp_path / "x.zarr"]) == 2
    one_line_error(capsys, "2 plates", "--plate")

def test_plane_options_on_a_file_layout_are_refused(tmp_path, capsys):
    pd.DataFrame([{"Metadata_Plate": "P", "Metadata_Well": "A01", "Metadata_Site": 1,
                   "FileName_OrigDNA": "a.tiff"}]).to_csv(tmp_path / "load_data.csv", index=False)
    assert run_cli(["index", tmp_path / "load_data.csv", "--z", 2, "-o", tmp_path / "i.parquet"]) == 2
    one_line_error(capsys, "--z", "apply to the ome-zarr and bioio layouts", "loaddata")

# -- vendor files through bioio -----------------------------------------------------------------------------------

def ome_tiffs(folder):
    rng = np.random.default_rng(1)
    data = {}
    for name in ("scan_B03_s1", "scan_B03_s2", "scan_C04_s1"):
        arr = rng.integers(0, 4000, size=(2, 3, 16, 20), dtype=np.uint16)  # z c y x
        tifffile.imwrite(folder / f"{name}.ome.tiff", arr, ome=True,
                         metadata={"axes": "ZCYX", "Channel": {"Name": ["Hoechst", "ER", "RNA"]}})
        data[name] = arr
    return data

def test_bioio_layout_indexes_ome_tiff_with_channel_names(tmp_path):
    pytest.importorskip("bioio_ome_tiff")
    data = ome_tiffs(tmp_path)
    out = tmp_path / "idx.parquet"
    assert run_cli(["index", tmp_path, "--layout", "bioio", "--channel-map", "Hoechst=DNA", "--plate", "P1",
                    "-o", out]) == 0
    idx = pd.read_parquet(out)
    assert list(idx[["Metadata_Well", "Metadata_Site"]].itertuples(index=False, name=None)) == [
        ("B03", 1), ("B03", 2), ("C04", 1)]
    assert [c for c in idx.columns if c.startswith("Path_")] == ["Path_DNA", "Path_ER", "Path_RNA"]
    np.testing.assert_array_equal(read_image(idx["Path_ER"].iloc[1]), data["scan_B03_s2"][0, 1])
    assert run_cli(["index", tmp_path, "--layout", "bioio", "--z-project", "max", "-o", out]) == 0
    np.testing.assert_array_equal(read_image(pd.read_parquet(out)["Path_RNA"].iloc[2]),
                                  data["scan_C04_s1"][:, 2].max(axis=0))

def test_bioio_missing_reader_names_the_extra(tmp_path, capsys):
    pytest.importorskip("bioio")
    try:
        import bioio_czi  # noqa: F401
        pytest.skip("bioio-czi is installed here")
    except ImportError:
        pass
    (tmp_path / "B03.czi").write_bytes(b"not a czi file")
    assert run_cli(["index", tmp_path, "--layout", "bioio", "-o", tmp_path / "i.parquet"]) == 2
    one_line_error(capsys, "B03.czi", "pip install 'stratonet[czi]'", "bioio-czi")

def test_bioio_file_without_a_well_in_its_name(tmp_path, capsys):
    pytest.importorskip("bioio_ome_tiff")
    tifffile.imwrite(tmp_path / "scan.ome.tiff", np.zeros((2, 8, 8), np.uint16), ome=True, metadata={"axes": "CYX"})
    assert run_cli(["index", tmp_path, "--layout", "bioio", "-o", tmp_path / "i.parquet"]) == 2
    one_line_error(capsys, "scan.ome.tiff", "no well in the file name", "--pattern")

# -- the report viewer reads an OME-Zarr site as it reads a TIFF ---------------------------------------------------

def test_viewer_thumbnail_of_an_omezarr_site_equals_the_tiff_one(tmp_path):
    pytest.importorskip("ome_zarr")
    from stratonet.report.images import load_thumb

    assert run_cli(["synth", tmp_path / "plate", "--wells", 1, "--sites", 1, "--size", 64]) == 0
    assert run_cli(["index", tmp_path / "plate" / "load_data.csv", "-o", tmp_path / "t.parquet"]) == 0
    assert run_cli(["export", tmp_path / "plate", "-o", tmp_path / "p.zarr"]) == 0
    assert run_cli(["index", tmp_path / "p.zarr", "-o", tmp_path / "z.parquet"]) == 0
    channels = ["DNA", "ER", "RNA", "AGP", "Mito"]
    tiff = load_thumb(pd.read_parquet(tmp_path / "t.parquet").iloc[0], channels, 32)
    zarr_site = load_thumb(pd.read_parquet(tmp_path / "z.parquet").iloc[0], channels, 32)
    assert not tiff.error and not zarr_site.error
    np.testing.assert_array_equal(tiff.planes, zarr_site.planes)
    assert zarr_site.focus == tiff.focus and zarr_site.saturated == tiff.saturated
