"""`extract deep` defaults to the bundled ImageNet EfficientNet-Lite0 and says so; untrained only on request."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_cli
from stratonet.core.errors import ConfigError
from stratonet.extract.deep.run import manifest_path
from stratonet.models import pretrained
from stratonet.core.tables import read_provenance

lite0_installed = pytest.mark.skipif(not pretrained.installed_weights().get(pretrained.DEFAULT_BUNDLED),
                                     reason="the 'pretrained' extra is not installed (make installs it)")


@pytest.fixture
def tiny_index(tmp_path):
    """2 sites x 1 channel (DNA) of 32x32 uint16 TIFFs."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(2):
        p = tmp_path / f"dna_{s}.tif"
        tifffile.imwrite(p, rng.integers(100, 4000, (32, 32), dtype=np.uint16))
        rows.append({"Metadata_Plate": "P1", "Metadata_Well": f"A0{s + 1}", "Metadata_Site": 1, "Path_DNA": str(p)})
    idx = tmp_path / "index.parquet"
    pd.DataFrame(rows).to_parquet(idx)
    return idx


def test_choose_weights():
    assert pretrained.choose_weights(None, None) is None
    assert pretrained.choose_weights("none", None) is None and pretrained.choose_weights("None", "resnet18") is None
    assert pretrained.choose_weights("default", "stratonet50") is None  # no bundled weights for it: untrained
    assert pretrained.choose_weights("resnet50.tv_in1k", None) == "resnet50.tv_in1k"


def test_missing_extra_is_one_line_with_the_fix(monkeypatch):
    monkeypatch.setattr(pretrained, "bundled_file", lambda entry: None)
    monkeypatch.setattr(pretrained, "is_cached", lambda name, cache=None: False)
    with pytest.raises(ConfigError) as err:
        pretrained.choose_weights("default", None)
    msg = str(err.value)
    assert "\n" not in msg and "pip install 'stratonet[pretrained]'" in msg and "--weights none" in msg


@lite0_installed
def test_cli_default_is_lite0_and_says_so(tiny_index, tmp_path, capsys):
    out = tmp_path / "deep.parquet"
    assert run_cli(["extract", "deep", tiny_index, "-o", out, "--input-size", "32", "--workers", "0"]) == 0
    err = capsys.readouterr().err
    assert "weights: efficientnet_lite0.in1k" in err and "the default" in err and "untrained" not in err.split(
        "--weights none")[0]
    prov = read_provenance(out)
    assert prov["model"] == "efficientnet_lite0" and prov["weights"].startswith("efficientnet_lite0.in1k")
    man = manifest_path(out).read_text()
    assert "efficientnet_lite0.in1k" in man


def test_cli_untrained_on_request_is_labelled(tiny_index, tmp_path, capsys):
    out = tmp_path / "deep.parquet"
    assert run_cli(["extract", "deep", tiny_index, "-o", out, "--weights", "none", "--model", "stratonet18",
                    "--input-size", "32", "--workers", "0"]) == 0
    assert "untrained (seed 0)" in capsys.readouterr().err
    assert read_provenance(out)["weights"] == "untrained (seed 0)"
    assert "untrained (seed 0)" in manifest_path(out).read_text()


@lite0_installed
def test_python_api_default_matches_the_cli(tiny_index, tmp_path):
    from stratonet.runtime import extract_deep

    m = extract_deep(tiny_index, tmp_path / "api.parquet", input_size=32, workers=0, progress=False)
    assert m["provenance"]["weights"].startswith("efficientnet_lite0.in1k")
