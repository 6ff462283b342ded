"""Remote inputs (issue 15, item 7): URLs stay intact through the CLI, network errors say "cannot reach HOST",
404 says "not found", transient errors are retried a bounded number of times. Servers run on 127.0.0.1 only."""

from __future__ import annotations

import functools
import http.server
import socket
import threading

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import one_line_error, run_cli
from format_fixtures import moto_s3
from stratonet.core.errors import InputFileError
from stratonet.images.io import read_image
from stratonet.core.tables import read_table



def write_loaddata(folder, wells=("A01", "A02"), channels=("DNA", "AGP"), shape=(16, 16)):
    """A LoadData CSV with relative file names and tiny uint16 TIFFs beside it."""
    rng = np.random.default_rng(0)
    rows = []
    for w in wells:
        row = {"Metadata_Plate": "P1", "Metadata_Well": w, "Metadata_Site": 1}
        for ch in channels:
            name = f"{w}_{ch}.tiff"
            tifffile.imwrite(folder / name, rng.integers(0, 4000, size=shape, dtype=np.uint16))
            row[f"FileName_Orig{ch}"] = name
        rows.append(row)
    pd.DataFrame(rows).to_csv(folder / "load_data.csv", index=False)
    return folder / "load_data.csv"


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; ``/flaky/<name>`` answers 503 on the first request for each name, then the file."""

    seen: dict[str, int] = {}

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        if self.path.startswith("/flaky/"):
            n = self.seen.get(self.path, 0)
            self.seen[self.path] = n + 1
            if n == 0:
                self.send_error(503, "try again")
                return
            self.path = self.path[len("/flaky"):]
        super().do_GET()

    def do_HEAD(self):
        if self.path.startswith("/flaky/"):
            self.send_error(405)  # fsspec falls back to GET
            return
        super().do_HEAD()


@pytest.fixture
def http_root(tmp_path):
    """(base URL, folder) of a threaded HTTP server on 127.0.0.1 serving ``folder``."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = type("H", (_Handler,), {"seen": {}})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", folder
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def refused_url():
    """A URL on a 127.0.0.1 port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/load_data.csv"


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch):
    monkeypatch.setenv("STRATONET_RETRIES", "2")


def test_index_over_http_keeps_url_and_reads_images(http_root, tmp_path):
    base, folder = http_root
    write_loaddata(folder)
    out = tmp_path / "index.parquet"
    assert run_cli(["index", f"{base}/load_data.csv", "-o", out]) == 0
    idx = pd.read_parquet(out)
    assert idx["Path_DNA"].tolist() == [f"{base}/A01_DNA.tiff", f"{base}/A02_DNA.tiff"]
    img = read_image(idx["Path_AGP"].iloc[1])
    np.testing.assert_array_equal(img, tifffile.imread(folder / "A02_AGP.tiff"))


def test_http_404_says_not_found(http_root, tmp_path, capsys):
    base, _ = http_root
    assert run_cli(["index", f"{base}/nope.csv", "-o", tmp_path / "i.parquet"]) != 0
    one_line_error(capsys, f"{base}/nope.csv", "not found")


def test_http_missing_image_in_index_says_not_found(http_root, tmp_path, capsys):
    base, folder = http_root
    write_loaddata(folder)
    (folder / "A02_AGP.tiff").unlink()
    assert run_cli(["index", f"{base}/load_data.csv", "-o", tmp_path / "i.parquet"]) != 0
    one_line_error(capsys, f"{base}/A02_AGP.tiff", "not found")


def test_refused_connection_says_cannot_reach_host(refused_url, tmp_path, capsys):
    assert run_cli(["index", refused_url, "-o", tmp_path / "i.parquet"]) != 0
    err = one_line_error(capsys, refused_url, "cannot reach 127.0.0.1:", "after 2 attempt(s)")
    assert "not found" not in err


def test_refused_connection_reading_an_image(refused_url):
    with pytest.raises(InputFileError, match="cannot reach 127.0.0.1"):
        read_image(refused_url.replace("load_data.csv", "x.tiff"))


def test_transient_503_is_retried(http_root):
    base, folder = http_root
    pd.DataFrame({"a": [1, 2]}).to_csv(folder / "t.csv", index=False)
    assert read_table(f"{base}/flaky/t.csv")["a"].tolist() == [1, 2]


def test_transient_errors_give_up_after_the_bound(http_root, monkeypatch):
    base, folder = http_root
    monkeypatch.setenv("STRATONET_RETRIES", "1")  # one attempt: the first 503 is final
    pd.DataFrame({"a": [1]}).to_csv(folder / "u.csv", index=False)
    with pytest.raises(InputFileError, match="cannot reach 127.0.0.1.*after 1 attempt"):
        read_table(f"{base}/flaky/u.csv")


def test_cli_keeps_s3_url_intact(monkeypatch, tmp_path):
    """click.Path would hand `s3:/bucket/...` to the indexer; the URL must arrive whole."""
    seen = {}

    def fake_build_index(source, layout=None, **kw):
        seen["source"] = source
        raise InputFileError(str(source), "stop here")

    monkeypatch.setattr("stratonet.index.build_index", fake_build_index)
    url = "s3://cellpainting-gallery/cpg0016-jump/source_4/workspace/load_data_csv/load_data.csv"
    assert run_cli(["index", url, "-o", tmp_path / "i.parquet"]) != 0
    assert seen["source"] == url


def test_s3_endpoint_via_moto_server(tmp_path, monkeypatch):
    """Index a LoadData CSV from an S3 endpoint on 127.0.0.1 (moto) and read a TIFF through the index."""
    with moto_s3(monkeypatch) as s3:
        local = tmp_path / "src"
        local.mkdir()
        write_loaddata(local)
        for f in sorted(local.iterdir()):  # public objects, read anonymously as the real gallery is
            s3.put_object(Bucket="gallery", Key=f"plate/{f.name}", Body=f.read_bytes(), ACL="public-read")
        out = tmp_path / "index.parquet"
        assert run_cli(["index", "s3://gallery/plate/load_data.csv", "-o", out]) == 0
        idx = pd.read_parquet(out)
        assert idx["Path_DNA"].iloc[0] == "s3://gallery/plate/A01_DNA.tiff"
        np.testing.assert_array_equal(read_image(idx["Path_DNA"].iloc[0]), tifffile.imread(local / "A01_DNA.tiff"))
        with pytest.raises(InputFileError, match="not found"):
            read_image("s3://gallery/plate/none.tiff")


def test_extract_pixel_from_an_index_served_over_http(http_root, tmp_path):
    base, folder = http_root
    write_loaddata(folder)
    assert run_cli(["index", f"{base}/load_data.csv", "-o", folder / "index.parquet"]) == 0
    out = tmp_path / "pixel.parquet"
    assert run_cli(["extract", "pixel", f"{base}/index.parquet", "-o", out, "--size", 4]) == 0
    feats = pd.read_parquet(out)
    assert len(feats) == 2 and "DNA_px_0015" in feats.columns


@pytest.mark.parametrize("kind", ["deep", "classical"])
def test_extract_cli_keeps_index_url_intact(kind, monkeypatch, tmp_path):
    seen = {}

    def fake_read_table(path, columns=None):
        seen["path"] = path
        raise InputFileError(str(path), "stop here")

    monkeypatch.setattr("stratonet.core.tables.read_table", fake_read_table)
    monkeypatch.setattr("stratonet.runtime.deep_run.read_table", fake_read_table)
    url = "s3://bucket/run/index.parquet"
    out = tmp_path / ("d.parquet" if kind == "deep" else "cl")
    assert run_cli(["extract", kind, url, "-o", out]) != 0
    assert seen["path"] == url


def test_silent_server_times_out_as_cannot_reach(monkeypatch):
    """A server that accepts the connection and never answers: a timeout, reported as a network error."""
    monkeypatch.setenv("STRATONET_NET_TIMEOUT", "0.5")
    monkeypatch.setenv("STRATONET_RETRIES", "1")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections queue in the backlog; nothing is ever read or written
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/slow.csv"
        with pytest.raises(InputFileError, match="cannot reach 127.0.0.1"):
            read_table(url)
    finally:
        silent.close()
