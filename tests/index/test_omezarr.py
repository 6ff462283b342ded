"""OME-Zarr HCS plates in and out (issue 29): a plate written by ome-zarr-py is indexed and read plane by plane;
the synthetic plate exported to OME-Zarr gives the TIFF route's deep, classical and pixel tables exactly; remote
plates are read over a local HTTP server and a local S3 (moto) server; broken plates are one-line errors."""

from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pandas as pd
import pytest

from conftest import one_line_error, run_cli
from format_fixtures import moto_s3
from stratonet.core.errors import InputFileError
from stratonet.images.io import read_image

zarr = pytest.importorskip("zarr")
ome_writer = pytest.importorskip("ome_zarr.writer")

LABELS = ["Hoechst", "ER", "RNA"]



def library_plate(path, wells=("B/3", "C/5"), fields=2, shape=(2, 3, 2, 24, 32), omero=True):
    """A tiny HCS plate written with ome-zarr-py: t c z y x images (2 time points, 3 channels, 2 z), 2 levels.
    Returns {(well path, field): array}."""
    rng = np.random.default_rng(0)
    root = zarr.open_group(str(path), mode="w")
    rows = sorted({w.split("/")[0] for w in wells})
    cols = sorted({w.split("/")[1] for w in wells})
    ome_writer.write_plate_metadata(root, rows, cols, list(wells), name="LIB01", field_count=fields)
    data = {}
    for w in wells:
        r, c = w.split("/")
        wg = root.require_group(r).require_group(c)
        ome_writer.write_well_metadata(wg, [{"path": str(f)} for f in range(fields)])
        for f in range(fields):
            img = rng.integers(0, 4000, size=shape, dtype=np.uint16)
            meta = {"omero": {"channels": [{"label": lab, "color": "FFFFFF"} for lab in LABELS]}} if omero else {}
            ome_writer.write_image(img, wg.require_group(str(f)), axes="tczyx", scale_factors=[2],
                                   storage_options={"chunks": (1, 1, 1, 24, 32)}, metadata=meta)
            data[(w, f)] = img
    return data


@pytest.fixture
def lib_plate(tmp_path):
    path = tmp_path / "LIB01.zarr"
    return path, library_plate(path)


def test_library_plate_is_indexed_and_read_plane_by_plane(lib_plate, tmp_path):
    path, data = lib_plate
    out = tmp_path / "idx.parquet"
    assert run_cli(["index", path, "-o", out, "--channel-map", "Hoechst=DNA"]) == 0  # layout auto-detected
    idx = pd.read_parquet(out)
    assert list(idx[["Metadata_Well", "Metadata_Site"]].itertuples(index=False, name=None)) == [
        ("B03", 1), ("B03", 2), ("C05", 1), ("C05", 2)]
    assert set(idx["Metadata_Plate"]) == {"LIB01"}
    assert [c for c in idx.columns if c.startswith("Path_")] == ["Path_DNA", "Path_ER", "Path_RNA"]
    assert idx["Path_ER"].iloc[1] == f"{path.resolve()}/B/3/1#c=1&level=0&z=0&t=0"
    for _, row in idx.iterrows():
        w = f"{row['Metadata_Well'][0]}/{int(row['Metadata_Well'][1:])}"
        img = data[(w, row["Metadata_Site"] - 1)]
        for c, ch in enumerate(["DNA", "ER", "RNA"]):
            np.testing.assert_array_equal(read_image(row[f"Path_{ch}"]), img[0, c, 0])
    # z plane, maximum projection, time point and a lower resolution level
    img = data[("B/3", 0)]
    assert run_cli(["index", path, "-o", out, "--z", 1, "--timepoint", 1]) == 0
    np.testing.assert_array_equal(read_image(pd.read_parquet(out)["Path_ER"].iloc[0]), img[1, 1, 1])
    assert run_cli(["index", path, "-o", out, "--z-project", "max"]) == 0
    np.testing.assert_array_equal(read_image(pd.read_parquet(out)["Path_RNA"].iloc[0]), img[0, 2].max(axis=0))
    assert run_cli(["index", path, "-o", out, "--level", 1]) == 0
    assert read_image(pd.read_parquet(out)["Path_Hoechst"].iloc[0]).shape == (12, 16)


def test_ngff_04_plate_in_zarr_v2_with_cyx_axes(tmp_path):
    """The IDR's plates are NGFF 0.4 (zarr v2, metadata at the top of .zattrs); images may lack t and z."""
    from ome_zarr.format import FormatV04

    fmt = FormatV04()
    root = zarr.open_group(str(tmp_path / "V4.zarr"), mode="w", zarr_format=2)
    ome_writer.write_plate_metadata(root, ["A"], ["1"], ["A/1"], fmt=fmt, name="V4")
    well = root.require_group("A").require_group("1")
    ome_writer.write_well_metadata(well, [{"path": "0"}], fmt=fmt)
    img = np.arange(2 * 16 * 16, dtype=np.uint16).reshape(2, 16, 16)
    ome_writer.write_image(img, well.require_group("0"), axes="cyx", fmt=fmt, scale_factors=[],
                           metadata={"omero": {"channels": [{"label": "DNA"}, {"label": "ER"}]}})
    assert (tmp_path / "V4.zarr" / ".zattrs").exists()
    out = tmp_path / "i.parquet"
    assert run_cli(["index", tmp_path / "V4.zarr", "-o", out]) == 0
    idx = pd.read_parquet(out)
    assert idx[["Metadata_Plate", "Metadata_Well", "Metadata_Site"]].iloc[0].tolist() == ["V4", "A01", 1]
    np.testing.assert_array_equal(read_image(idx["Path_ER"].iloc[0]), img[1])


def test_level_z_or_time_out_of_range_is_one_line_error(lib_plate, tmp_path, capsys):
    path, _ = lib_plate
    assert run_cli(["index", path, "-o", tmp_path / "i.parquet", "--level", 2]) == 2
    assert "no resolution level 2" in one_line_error(capsys, "B/3/0")
    assert run_cli(["index", path, "-o", tmp_path / "i.parquet", "--z", 5]) == 2
    assert "z=5 is out of range" in one_line_error(capsys, "B/3/0")


def test_broken_plates_are_one_line_errors_naming_the_path(lib_plate, tmp_path, capsys):
    path, _ = lib_plate
    out = tmp_path / "i.parquet"
    # a field listed by its well but absent
    import shutil

    shutil.rmtree(path / "C" / "5" / "1")
    assert run_cli(["index", path, "-o", out]) == 2
    assert f"{path.resolve()}/C/5/1" in one_line_error(capsys, "not found")
    # wrong axes: an image whose axes are not in NGFF order
    field = zarr.open_group(str(path / "B" / "3" / "0"), mode="r+")
    ome = dict(field.attrs["ome"])
    ms = [dict(ome["multiscales"][0])]
    ms[0]["axes"] = [{"name": a, "type": "space"} for a in "tcyxz"]
    field.attrs["ome"] = {**ome, "multiscales": ms}
    assert run_cli(["index", path, "-o", out]) == 2
    assert f"{path.resolve()}/B/3/0" in one_line_error(capsys, "axes 'tcyxz'")
    # no omero channel labels
    missing = tmp_path / "NOOMERO.zarr"
    library_plate(missing, wells=("A/1",), fields=1, omero=False)
    assert run_cli(["index", missing, "-o", out]) == 2
    assert f"{missing.resolve()}/A/1/0" in one_line_error(capsys, "no 'omero' channel labels", "--channel-map")
    assert run_cli(["index", missing, "-o", out, "--channel-map", "0=DNA,1=ER,2=RNA"]) == 0
    # a folder that is no plate
    single = tmp_path / "image.zarr"
    ome_writer.write_image(np.zeros((2, 8, 8), np.uint16), zarr.open_group(str(single), mode="w"), axes="cyx")
    assert run_cli(["index", single, "-o", out]) == 2
    one_line_error(capsys, str(single.resolve()), "not an OME-Zarr HCS plate")


# -- the synthetic plate: TIFF route and OME-Zarr route give the same tables --------------------------------------

DEEP = ["--model", "stratonet18", "--input-size", 32, "--workers", 0, "--batch-size", 4, "--channels", "DNA,AGP"]


@pytest.fixture(scope="module")
def two_routes(tmp_path_factory):
    """The synthetic plate indexed from its TIFFs and from its OME-Zarr export."""
    tmp = tmp_path_factory.mktemp("routes")
    assert run_cli(["synth", tmp / "plate", "--wells", 2, "--sites", 2, "--size", 128, "--seed", 3]) == 0
    assert run_cli(["index", tmp / "plate" / "load_data.csv", "-o", tmp / "tiff.parquet"]) == 0
    assert run_cli(["export", tmp / "plate", "-o", tmp / "SYNTH01.zarr", "--levels", 2]) == 0
    assert run_cli(["index", tmp / "SYNTH01.zarr", "-o", tmp / "zarr.parquet"]) == 0
    return tmp


def _same_table(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """Max abs difference of the numeric columns of two feature tables (paths aside); asserts the rest equal."""
    keep = [c for c in a.columns if not c.startswith(("Path_", "Illum_"))]
    assert keep == [c for c in b.columns if not c.startswith(("Path_", "Illum_"))]
    a, b = a[keep].reset_index(drop=True), b[keep].reset_index(drop=True)
    num = [c for c in keep if pd.api.types.is_numeric_dtype(a[c])]
    assert len(a) > 0 and len(num) > 0
    pd.testing.assert_frame_equal(a.drop(columns=num), b.drop(columns=num))
    diff = np.abs(a[num].to_numpy(dtype=float) - b[num].to_numpy(dtype=float))
    assert np.array_equal(np.isnan(a[num].to_numpy(dtype=float)), np.isnan(b[num].to_numpy(dtype=float)))
    return float(np.nanmax(diff)) if diff.size else 0.0


def test_export_reindex_keeps_rows_and_metadata(two_routes):
    tiff = pd.read_parquet(two_routes / "tiff.parquet")
    zarr_idx = pd.read_parquet(two_routes / "zarr.parquet")
    meta = [c for c in tiff.columns if c.startswith("Metadata_")]
    assert meta == [c for c in zarr_idx.columns if c.startswith("Metadata_")]
    pd.testing.assert_frame_equal(tiff[meta], zarr_idx[meta])
    assert zarr_idx["Path_DNA"].str.contains(r"SYNTH01\.zarr/A/1/0#c=0&level=0&z=0&t=0").iloc[0]


@pytest.mark.parametrize("kind", ["deep", "pixel", "classical"])
def test_tiff_and_omezarr_routes_give_identical_tables(two_routes, tmp_path, kind):
    outs = {}
    for route in ("tiff", "zarr"):
        idx = two_routes / f"{route}.parquet"
        if kind == "deep":
            out = tmp_path / route / "deep.parquet"
            assert run_cli(["extract", "deep", idx, "-o", out, *DEEP]) == 0
            outs[route] = {"deep": pd.read_parquet(out)}
        elif kind == "pixel":
            out = tmp_path / route / "pixel.parquet"
            assert run_cli(["extract", "pixel", idx, "-o", out, "--size", 8]) == 0
            outs[route] = {"pixel": pd.read_parquet(out)}
        else:
            out = tmp_path / route / "classical"
            assert run_cli(["extract", "classical", idx, "-o", out, "--features", "areashape",
                            "--workers", 1]) == 0
            outs[route] = {p.name: pd.read_parquet(p) for p in sorted(out.glob("*.parquet"))}
    assert outs["tiff"].keys() == outs["zarr"].keys()
    for name in outs["tiff"]:
        assert _same_table(outs["tiff"][name], outs["zarr"][name]) == 0.0, name
    if kind == "classical":
        assert len(outs["zarr"]["single_cell.parquet"]) > 0  # cells were found, so the comparison has content


def test_illumination_and_bitdepth_scaling_agree_across_routes(two_routes, tmp_path):
    """Illumination functions computed at index time (--illum) and bit-depth scaling (the plate scaling is the
    default of the test above): same numbers."""
    tables = []
    for route, source in (("tiff", two_routes / "plate" / "load_data.csv"), ("zarr", two_routes / "SYNTH01.zarr")):
        idx = tmp_path / route / "index.parquet"
        assert run_cli(["index", source, "-o", idx, "--illum"]) == 0
        assert pd.read_parquet(idx)["Illum_DNA"].notna().all()
        out = tmp_path / route / "pixel.parquet"
        assert run_cli(["extract", "pixel", idx, "-o", out, "--size", 8, "--scaling", "bitdepth"]) == 0
        tables.append(pd.read_parquet(out))
    assert _same_table(*tables) == 0.0


# -- remote plates -------------------------------------------------------------------------------------------------

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_plate(lib_plate):
    """(URL of the library plate served on 127.0.0.1, local path, data)."""
    path, data = lib_plate
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(path.parent)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/{path.name}", path, data
    finally:
        srv.shutdown()
        srv.server_close()


def test_plate_over_http_reads_the_same_planes(http_plate, tmp_path):
    url, path, data = http_plate
    out = tmp_path / "idx.parquet"
    assert run_cli(["index", url, "-o", out]) == 0  # auto-detected from the .zarr name
    idx = pd.read_parquet(out)
    assert len(idx) == 4 and idx["Path_RNA"].iloc[3] == f"{url}/C/5/1#c=2&level=0&z=0&t=0"
    np.testing.assert_array_equal(read_image(idx["Path_RNA"].iloc[3]), data[("C/5", 1)][0, 2, 0])
    px = tmp_path / "px.parquet"
    assert run_cli(["extract", "pixel", out, "-o", px, "--size", 4]) == 0
    assert len(pd.read_parquet(px)) == 4
    with pytest.raises(InputFileError, match="not found"):
        read_image(f"{url.rsplit('/', 1)[0]}/NOPE.zarr/A/1/0#c=0&level=0&z=0&t=0")


def test_plate_on_s3_via_moto_server(lib_plate, tmp_path, monkeypatch):
    path, data = lib_plate
    with moto_s3(monkeypatch) as s3:
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            s3.put_object(Bucket="gallery", Key=f"plates/{f.relative_to(path.parent).as_posix()}",
                          Body=f.read_bytes(), ACL="public-read")
        out = tmp_path / "idx.parquet"
        assert run_cli(["index", "s3://gallery/plates/LIB01.zarr", "-o", out]) == 0
        idx = pd.read_parquet(out)
        assert idx["Path_ER"].iloc[0] == "s3://gallery/plates/LIB01.zarr/B/3/0#c=1&level=0&z=0&t=0"
        for _, row in idx.iterrows():
            w = f"{row['Metadata_Well'][0]}/{int(row['Metadata_Well'][1:])}"
            np.testing.assert_array_equal(read_image(row["Path_Hoechst"]),
                                          data[(w, row["Metadata_Site"] - 1)][0, 0, 0])
