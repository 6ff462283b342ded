"""train classifier --init: fine-tune StratoNet from (ImageNet-style) ResNet weights (issue 9, item 5)."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli
from train_fixtures import make_image_folder, one_torch_thread  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def resnet50_pth(tmp_path_factory):
    """An untrained resnet50 state dict saved as an original .pth (stands in for an ImageNet checkpoint)."""
    from stratonet.models import create_model

    path = tmp_path_factory.mktemp("init") / "resnet50_test.pth"
    torch.save(create_model("resnet50", seed=7).state_dict(), path)
    return path


def test_init_loads_matching_resnet_tensors_and_leaves_eca_gates(resnet50_pth):
    from stratonet.models import create_model
    from stratonet.train.nets import build_network

    src = torch.load(resnet50_pth, weights_only=True)
    net = build_network("stratonet50", in_chans=3, num_classes=4, seed=1, init=str(resnet50_pth))
    fresh = create_model("stratonet50", seed=1, in_chans=3, num_classes=4).state_dict()
    own = net.state_dict()
    rep = net.init_report
    gates = [k for k in own if ".attn." in k]
    assert gates and set(gates) <= set(rep["kept_own_init"])
    for k in gates:  # not loaded: the seeded initialisation, untouched
        assert torch.equal(own[k], fresh[k])
    matched = [k for k in own if k in src and own[k].shape == src[k].shape and not k.endswith("num_batches_tracked")]
    assert len(matched) == rep["loaded_tensors"] > 100
    for k in matched:
        assert torch.equal(own[k], src[k]), k
    assert any(not torch.equal(own[k], fresh[k]) for k in matched)  # really replaced, not seed-identical
    assert rep["source"] == str(resnet50_pth) and len(rep["source_sha256"]) == 64


def test_train_classifier_init_records_what_was_loaded(resnet50_pth, tmp_path, capsys):
    shapes = make_image_folder(tmp_path / "shapes", 4, size=40, classes=["disk", "square"])
    argv = ["train", "classifier", shapes, "-o", tmp_path / "run", "--model", "stratonet50", "--epochs", "1",
            "--val-fraction", "0.5", "--resize", "36", "--crop", "32", "--batch-size", "8", "--plateau-patience",
            "0", "--init", resnet50_pth]
    assert run_cli(argv) == 0
    out = capsys.readouterr().err
    assert "init: " in out and "ECA gates" in out
    run = tmp_path / "run" / "train" / "classifier_stratonet50"
    from stratonet.models.checkpoint import read_card

    card = read_card(run / "best")
    assert card["init"]["source"] == str(resnet50_pth) and card["init"]["loaded_tensors"] > 100
    assert any(".attn." in k for k in card["init"]["kept_own_init"])
    m = json.loads((run / "metrics.json").read_text())
    assert m["provenance"]["init"]["source_sha256"] == card["init"]["source_sha256"]
    assert m["config"]["init"] == str(resnet50_pth)


def test_init_bad_input_is_one_line_error(tmp_path, capsys):
    shapes = make_image_folder(tmp_path / "shapes", 2, size=40, classes=["disk", "square"])
    base = ["train", "classifier", shapes, "-o", tmp_path / "run", "--epochs", "1", "--resize", "36", "--crop", "32"]
    assert run_cli([*base, "--model", "stratonet50", "--init", tmp_path / "missing.pth"]) != 0
    err = capsys.readouterr().err
    assert "missing.pth" in err and "Traceback" not in err
    assert run_cli([*base, "--model", "cnn3", "--init", "resnet50.imagenet"]) != 0
    assert "cnn3" in capsys.readouterr().err
