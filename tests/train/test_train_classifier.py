"""train classifier: one epoch on an ImageFolder and on an index, resume, checkpoints, transforms."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run_cli
from train_fixtures import make_image_folder, make_index, one_torch_thread  # noqa: F401 (autouse fixture)

FAST = ["--resize", "40", "--crop", "32", "--batch-size", "16", "--plateau-patience", "0"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """10 classes x 6 grayscale 48 px PNG shapes."""
    return make_image_folder(tmp_path_factory.mktemp("shapes"), 6, size=48)


@pytest.fixture(scope="module")
def trained(shapes, tmp_path_factory):
    """One epoch of StratoNet-18 on the shapes; the run folder."""
    out = tmp_path_factory.mktemp("run")
    argv = ["train", "classifier", shapes, "-o", out, "--model", "stratonet18", "--epochs", "1",
            "--val-fraction", "0.34", *FAST]
    assert run_cli(argv) == 0
    return out / "train" / "classifier_stratonet18"


def test_one_epoch_imagefolder_saves_loadable_checkpoint(trained):
    d = trained
    ep = pd.read_csv(d / "epochs.csv")
    assert {"epoch", "train_loss", "train_top1", "train_top5", "val_loss", "val_top1", "val_top5"} <= set(ep.columns)
    m = json.loads((d / "metrics.json").read_text())
    assert m["best_epoch"] == 1 and m["top1"] == pytest.approx(ep["val_top1"].iloc[0])
    assert m["top5"] >= m["top1"] and m["chance"] == pytest.approx(0.1)
    for f in ("curves.png", "confusion.csv", "confusion.png", "classification_report.csv", "best.json"):
        assert (d / f).exists(), f
    from stratonet.models import load_checkpoint

    model, card = load_checkpoint(d / "best")
    assert card["input_size"] == 32 and card["num_classes"] == 10 and len(card["classes"]) == 10
    assert card["normalization"]["name"] == "dataset" and len(card["normalization"]["mean"]) == 3
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_checkpoint_feeds_extract_deep(trained, tmp_path):
    """The best checkpoint goes straight into `extract deep --weights`; features differ from the untrained net's."""
    from stratonet.core.tables import is_untrained, read_provenance

    index = make_index(tmp_path / "plate", {"DMSO": 2, "bright": 1}, sites=1, size=40)
    common = ["extract", "deep", index, "--channels", "DNA", "--workers", "0", "--batch-size", "4"]
    assert run_cli(common + ["-o", tmp_path / "trained.parquet", "--weights", trained / "best.safetensors"]) == 0
    assert run_cli(common + ["-o", tmp_path / "untrained.parquet", "--model", "stratonet18",
                             "--input-size", "32"]) == 0
    prov = read_provenance(tmp_path / "trained.parquet")
    assert prov["model"] == "stratonet18" and prov["input_size"] == 32 and not is_untrained(prov)
    assert is_untrained(read_provenance(tmp_path / "untrained.parquet"))
    a = pd.read_parquet(tmp_path / "trained.parquet")
    b = pd.read_parquet(tmp_path / "untrained.parquet")
    feats = [c for c in a.columns if c.startswith("DNA_")]
    assert len(a) == 3 and feats and feats == [c for c in b.columns if c.startswith("DNA_")]
    assert not np.allclose(a[feats].to_numpy(), b[feats].to_numpy())


def test_resume_continues_history(shapes, tmp_path):
    base = ["train", "classifier", shapes, "-o", tmp_path, "--model", "resnet18", "--val-fraction", "0.34", *FAST]
    assert run_cli(base + ["--epochs", "1"]) == 0
    d = tmp_path / "train" / "classifier_resnet18"
    first = pd.read_csv(d / "epochs.csv")
    assert run_cli(base + ["--epochs", "2", "--resume"]) == 0
    both = pd.read_csv(d / "epochs.csv")
    assert list(both["epoch"]) == [1, 2]
    # epoch 1 comes from the saved state, not from a retrain
    assert both["train_loss"].iloc[0] == pytest.approx(first["train_loss"].iloc[0])
    state = torch.load(d / "last_state.pt", weights_only=False)
    assert state["epoch"] == 2


def test_resume_without_state_is_one_line_error(shapes, tmp_path, capsys):
    argv = ["train", "classifier", shapes, "-o", tmp_path, "--epochs", "1", "--resume", *FAST]
    assert run_cli(argv) != 0
    err = capsys.readouterr().err
    assert "last_state.pt" in err and "Traceback" not in err


def test_deterministic_runs_repeat(shapes, tmp_path):
    argv = ["train", "classifier", shapes, "--model", "stratonet18", "--epochs", "1", "--deterministic",
            "--val-fraction", "0.34", *FAST]
    assert run_cli(argv + ["-o", tmp_path / "a"]) == 0
    assert run_cli(argv + ["-o", tmp_path / "b"]) == 0
    a = pd.read_csv(tmp_path / "a" / "train" / "classifier_stratonet18" / "epochs.csv")
    b = pd.read_csv(tmp_path / "b" / "train" / "classifier_stratonet18" / "epochs.csv")
    assert a["train_loss"].iloc[0] == b["train_loss"].iloc[0]
    assert a["val_loss"].iloc[0] == b["val_loss"].iloc[0]


def test_index_with_label(tmp_path):
    index = make_index(tmp_path / "plate", {"DMSO": 5, "bright": 5}, sites=1, size=40)
    argv = ["train", "classifier", index, "-o", tmp_path / "run", "--label", "Metadata_pert_iname",
            "--channels", "DNA", "--in-chans", "1", "--model", "stratonet18", "--epochs", "1", "--val-fraction",
            "0.2", *FAST]
    assert run_cli(argv) == 0
    m = json.loads((tmp_path / "run" / "train" / "classifier_stratonet18" / "metrics.json").read_text())
    assert m["classes"] == ["DMSO", "bright"] and m["n_train"] + m["n_val"] == 10


def test_missing_data_is_one_line_error(tmp_path, capsys):
    assert run_cli(["train", "classifier", tmp_path / "nope", "-o", tmp_path]) != 0
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err


def test_transforms_shapes_and_flip():
    from stratonet.train.transforms import classifier_transforms, treatment_transforms

    x = torch.rand(3, 60, 80)
    tr, va = classifier_transforms(48, 40, [0.5] * 3, [0.25] * 3)
    assert tr(x).shape == (3, 40, 40) and va(x).shape == (3, 40, 40)
    # val is deterministic; normalisation uses the given statistics, not the image's own
    assert torch.equal(va(x), va(x))
    flat = torch.full((3, 60, 80), 0.5)
    assert torch.allclose(va(flat), torch.zeros(3, 40, 40))
    ttr, tva = treatment_transforms(24, [0.0], [1.0])
    img = torch.arange(32 * 32, dtype=torch.float32).view(1, 32, 32)
    outs = {tuple(ttr(img)[0, 0, :2].tolist()) for _ in range(30)}
    assert len(outs) > 1  # random crops / flips / rotations vary
    assert tva(img).shape == (1, 24, 24)
