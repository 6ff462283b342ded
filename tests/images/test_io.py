"""Image I/O: local files and fsspec URLs (memory://), indexed through LoadData."""

from __future__ import annotations

import io

import fsspec
import numpy as np
import pandas as pd
import pytest
import tifffile

from stratonet.core.errors import InputFileError, SiteError
from stratonet.index import build_index
from stratonet.images.io import load_index_row, load_site, read_image


@pytest.fixture
def memfs():
    fs = fsspec.filesystem("memory")
    yield fs
    for p in fs.find("/stratonet-test"):
        fs.rm(p)


def _put_tiff(fs, path, arr):
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr)
    with fs.open(path, "wb") as fh:
        fh.write(buf.getvalue())


def test_memory_url_indexed_by_loaddata_and_read_back(tmp_path, memfs):
    rng = np.random.default_rng(1)
    dna = rng.integers(0, 60000, size=(16, 20), dtype=np.uint16)
    agp = rng.integers(0, 60000, size=(16, 20), dtype=np.uint16)
    _put_tiff(memfs, "/stratonet-test/plate1/r01c01f01p01-ch5sk1fk1fl1.tiff", dna)
    _put_tiff(memfs, "/stratonet-test/plate1/r01c01f01p01-ch2sk1fk1fl1.tiff", agp)
    pd.DataFrame({
        "Metadata_Plate": ["plate1"], "Metadata_Well": ["A01"], "Metadata_Site": [1],
        "FileName_OrigDNA": ["r01c01f01p01-ch5sk1fk1fl1.tiff"], "PathName_OrigDNA": ["memory://stratonet-test/plate1"],
        "FileName_OrigAGP": ["r01c01f01p01-ch2sk1fk1fl1.tiff"], "PathName_OrigAGP": ["memory://stratonet-test/plate1/"],
    }).to_csv(tmp_path / "load_data.csv", index=False)
    df = build_index(tmp_path / "load_data.csv")  # checks URLs exist
    assert df.iloc[0]["Path_DNA"] == "memory://stratonet-test/plate1/r01c01f01p01-ch5sk1fk1fl1.tiff"
    img = load_index_row(df.iloc[0], ["DNA", "AGP"])
    assert img.shape == (2, 16, 20) and img.dtype == np.float32
    np.testing.assert_array_equal(img[0], dna.astype(np.float32))
    np.testing.assert_array_equal(img[1], agp.astype(np.float32))


def test_memory_url_missing_is_named(tmp_path, memfs):
    pd.DataFrame({"Metadata_Plate": ["p"], "Metadata_Well": ["A01"], "Metadata_Site": [1],
                  "FileName_OrigDNA": ["nope.tiff"], "PathName_OrigDNA": ["memory://stratonet-test/x"]}
                 ).to_csv(tmp_path / "ld.csv", index=False)
    with pytest.raises(InputFileError, match="memory://stratonet-test/x/nope.tiff: file not found"):
        build_index(tmp_path / "ld.csv")
    with pytest.raises(InputFileError, match="nope.tiff"):
        read_image("memory://stratonet-test/x/nope.tiff")


def test_read_image_formats_and_errors(tmp_path):
    a = np.arange(12, dtype=np.uint16).reshape(3, 4)
    tifffile.imwrite(tmp_path / "a.tif", a)
    np.save(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), a)
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy"), a)
    (tmp_path / "bad.tif").write_bytes(b"nonsense")
    with pytest.raises(InputFileError, match="bad.tif"):
        read_image(tmp_path / "bad.tif")
    with pytest.raises(InputFileError, match="unknown image type"):
        (tmp_path / "a.xyz").write_bytes(b"1")
        read_image(tmp_path / "a.xyz")


def test_load_site_errors_name_site(tmp_path):
    # not constant: a constant image is a bad site of its own (issue 27, D2)
    tifffile.imwrite(tmp_path / "a.tif", np.arange(16, dtype=np.uint16).reshape(4, 4))
    tifffile.imwrite(tmp_path / "b.tif", np.arange(20, dtype=np.uint16).reshape(5, 4))
    with pytest.raises(SiteError, match="site P/A01/1: channel 'ER' is missing"):
        load_site({"DNA": str(tmp_path / "a.tif")}, ["DNA", "ER"], site="P/A01/1")
    with pytest.raises(SiteError, match="differ in size"):
        load_site({"DNA": str(tmp_path / "a.tif"), "ER": str(tmp_path / "b.tif")}, ["DNA", "ER"], site="P/A01/1")
