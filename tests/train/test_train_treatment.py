"""train treatment: one epoch of each model, contract outputs, imbalance handling, the collapse check, splits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from train_fixtures import make_index, one_torch_thread  # noqa: F401 (autouse fixture)

FAST = ["--size", "32", "--crop", "28", "--batch-size", "8", "--plateau-patience", "0"]


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory):
    """DMSO majority (8 wells) plus three treatments (3 wells each), 2 sites per well, 48 px TIFFs."""
    return make_index(tmp_path_factory.mktemp("plate"), {"DMSO": 8, "bright": 3, "stripes": 3, "ring": 3})


def _read(run, name):
    d = run / "train" / name
    return d, json.loads((d / "metrics.json").read_text())


def test_cnn3_one_epoch_writes_contract_outputs(tiny_index, tmp_path):
    assert run_cli(["train", "treatment", tiny_index, "-o", tmp_path, "--epochs", "1", *FAST]) == 0
    d, m = _read(tmp_path, "treatment_cnn3")
    for f in ("epochs.csv", "metrics.json", "confusion.csv", "confusion.png", "classification_report.csv",
              "curves.png", "label_encoding.json", "split.csv", "model.safetensors", "model.json",
              "train_treatment.config.yaml"):
        assert (d / f).exists(), f
    ep = pd.read_csv(d / "epochs.csv")
    assert list(ep["epoch"]) == [1]
    assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= set(ep.columns)
    for k in ("model", "provenance", "accuracy", "macro_f1", "majority_baseline", "collapsed"):
        assert k in m
    assert m["model"] == "cnn3" and m["majority_class"] == "DMSO"
    enc = json.loads((d / "label_encoding.json").read_text())
    assert enc["classes"] == ["DMSO", "bright", "ring", "stripes"]
    cm = pd.read_csv(d / "confusion.csv", index_col=0)
    assert cm.values.sum() == m["n_val"]


@pytest.mark.parametrize("model", ["rf", "svm"])
def test_pixel_baselines(tiny_index, tmp_path, model):
    assert run_cli(["train", "treatment", tiny_index, "-o", tmp_path, "--model", model, *FAST]) == 0
    d, m = _read(tmp_path, f"treatment_{model}")
    # the classes differ grossly in their pixels: a pixel model must beat the majority baseline
    assert m["accuracy"] > m["majority_baseline"]
    assert (d / "confusion.csv").exists() and not (d / "epochs.csv").exists()


@pytest.mark.parametrize("model", ["resnet18", "stratonet"])
def test_registered_networks_one_epoch(tiny_index, tmp_path, model):
    argv = ["train", "treatment", tiny_index, "-o", tmp_path, "--model", model, "--epochs", "1",
            "--no-grayscale", "--channels", "DNA,AGP", *FAST]
    assert run_cli(argv) == 0
    name = {"resnet18": "resnet18", "stratonet": "stratonet18"}[model]
    d, m = _read(tmp_path, f"treatment_{name}")
    card = json.loads((d / "model.json").read_text())
    assert card["in_chans"] == 2 and card["num_classes"] == 4 and card["model"] == name
    from stratonet.models import load_checkpoint

    net, _ = load_checkpoint(d / "model")
    assert net.conv1.in_channels == 2


def test_no_collapse_on_imbalanced_set(tiny_index, tmp_path):
    """With the weighted loss the CNN must not sit on the DMSO majority (the CPJUMP1 CNN did)."""
    argv = ["train", "treatment", tiny_index, "-o", tmp_path, "--epochs", "6", "--imbalance", "weighted-loss",
            "--seed", "1", *FAST]
    assert run_cli(argv) == 0
    _, m = _read(tmp_path, "treatment_cnn3")
    assert m["collapsed"] is False
    assert m["collapse"]["n_predicted_classes"] >= 2


def test_collapse_check_flags_single_class_predictions():
    from stratonet.train.outputs import collapse_check

    assert collapse_check(np.zeros(20, dtype=int), 4)["collapsed"]
    assert collapse_check(np.array([0] * 19 + [1]), 4)["collapsed"]  # 95% one class
    ok = collapse_check(np.array([0, 1, 2, 3] * 5), 4)
    assert not ok["collapsed"] and ok["n_predicted_classes"] == 4


def test_collapse_warning_is_loud(tmp_path, capsys):
    from stratonet.train.outputs import collapse_check, warn_collapse

    warn_collapse(collapse_check(np.zeros(10, dtype=int), 3), ["DMSO", "a", "b"], "cnn3")
    assert "COLLAPSED" in capsys.readouterr().err


def test_balanced_sampler_makes_balanced_batches():
    from stratonet.train.imbalance import BalancedBatchSampler

    labels = np.array([0] * 90 + [1] * 6 + [2] * 4)
    s = BalancedBatchSampler(labels, batch_size=12, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 9
    for b in batches:
        assert len(b) == 12
        assert np.bincount(labels[b], minlength=3).tolist() == [4, 4, 4]
    # minority samples are all used before any repeats
    first = [i for b in batches[:2] for i in b if labels[i] == 2]
    assert len(set(first[:4])) == 4


def test_balanced_sampler_option_trains(tiny_index, tmp_path):
    argv = ["train", "treatment", tiny_index, "-o", tmp_path, "--epochs", "1", "--imbalance", "balanced-sampler", *FAST]
    assert run_cli(argv) == 0


def test_downsample_majority():
    from stratonet.train.imbalance import class_weights, downsample_majority

    labels = np.array([0] * 50 + [1] * 10 + [2] * 7)
    keep = downsample_majority(labels, seed=0)
    assert np.bincount(labels[keep]).tolist() == [10, 10, 7]
    w = class_weights(labels, 3)
    assert w[0] < w[2] and float((w.numpy() * np.bincount(labels)).sum()) == pytest.approx(len(labels))


def test_group_split_keeps_wells_together():
    from stratonet.train.split import stratified_split

    wells = np.repeat(np.arange(30), 3)
    labels = np.repeat(np.arange(30) % 3, 3)
    tr, va = stratified_split(labels, wells, 0.2, seed=0)
    assert not set(wells[tr]) & set(wells[va])
    assert 0.1 < len(va) / len(labels) < 0.3
    assert set(labels[va]) == {0, 1, 2}


def test_preload_keeps_intensity_differences(tiny_index):
    """Dataset-level scaling, not per-image min-max: a bright treatment stays brighter than DMSO."""
    from stratonet.train.data import preload_index

    index = pd.read_parquet(tiny_index)
    x, ok = preload_index(index, ["DNA"], 16, grayscale=True)
    assert x.shape == (len(index), 1, 16, 16) and len(ok) == len(index)
    kind = index["Metadata_pert_iname"].to_numpy()
    assert x[kind == "bright"].mean() > 2 * x[kind == "DMSO"].mean()


def test_missing_label_column_is_one_line_error(tiny_index, tmp_path, capsys):
    assert run_cli(["train", "treatment", tiny_index, "-o", tmp_path, "--label", "Metadata_nope", *FAST]) != 0
    err = capsys.readouterr().err
    assert "Metadata_nope" in err and "Traceback" not in err


def test_label_encoding_roundtrip(tmp_path):
    from stratonet.train.labels import LabelEncoding

    enc = LabelEncoding.fit(["b", "a", "b", "DMSO"], "Metadata_pert_iname")
    assert enc.classes == ["DMSO", "a", "b"]
    back = LabelEncoding.load(enc.save(tmp_path / "enc.json"))
    assert back.decode(back.encode(["a", "DMSO"])) == ["a", "DMSO"]


def test_corrupt_site_fails_or_is_skipped(tiny_index, tmp_path, capsys):
    index = pd.read_parquet(tiny_index)
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(b"not a tiff")
    index.loc[0, "Path_DNA"] = str(bad)
    path = tmp_path / "index.parquet"
    index.to_parquet(path)
    assert run_cli(["train", "treatment", path, "-o", tmp_path / "a", "--model", "rf", *FAST]) != 0
    err = capsys.readouterr().err
    assert "corrupt.tif" in err and "Traceback" not in err
    assert run_cli(["train", "treatment", path, "-o", tmp_path / "b", "--model", "rf", "--on-error", "skip", *FAST]) == 0
    d, m = _read(tmp_path / "b", "treatment_rf")
    errors = pd.read_csv(d / "errors.csv")
    assert len(errors) == 1 and m["n_train"] + m["n_val"] == len(index) - 1


def test_treatment_resume(tiny_index, tmp_path):
    base = ["train", "treatment", tiny_index, "-o", tmp_path, *FAST]
    assert run_cli(base + ["--epochs", "1"]) == 0
    assert run_cli(base + ["--epochs", "2", "--resume"]) == 0
    ep = pd.read_csv(tmp_path / "train" / "treatment_cnn3" / "epochs.csv")
    assert list(ep["epoch"]) == [1, 2]
