"""``train --precision``: how auto chooses (mocked CPU probe), and a tiny bf16 training run that records it."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli
from stratonet.core.errors import ConfigError
from stratonet.models import precision as precision_mod
from stratonet.models.precision import resolve_train_precision
from stratonet.train.steps import autocast_for
from train_fixtures import make_image_folder, one_torch_thread  # noqa: F401 (autouse fixture)

CPU = torch.device("cpu")
NO_BF16 = {"fpu", "sse2", "avx2", "fma", "avx512f"}


@pytest.mark.parametrize("flags, bf16, expected", [
    (NO_BF16 | {"avx512_bf16"}, True, "bf16"),
    (NO_BF16 | {"amx_bf16"}, True, "bf16"),
    (NO_BF16, True, "fp32"),
    (NO_BF16 | {"avx512_bf16"}, False, "fp32"),  # the older --no-bf16 switch
])
def test_train_auto_follows_the_probe(monkeypatch, flags, bf16, expected):
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda *a, **k: set(flags))
    chosen = resolve_train_precision("auto", CPU, bf16)
    assert chosen.name == expected and chosen.requested == "auto"
    assert resolve_train_precision("auto", torch.device("cuda"), True).name == "bf16"
    assert resolve_train_precision("fp32", CPU).name == "fp32"
    forced = resolve_train_precision("bf16", CPU)
    assert forced.name == "bf16" and (("emulated" in forced.reason) == ("avx512_bf16" not in flags
                                                                        and "amx_bf16" not in flags))
    with pytest.raises(ConfigError, match="unknown precision"):
        resolve_train_precision("int8", CPU)


def test_train_auto_keeps_fp32_for_models_slower_in_bf16(monkeypatch):
    from stratonet.extract.deep.run import build_model

    monkeypatch.setattr(precision_mod, "cpu_flags", lambda *a, **k: NO_BF16 | {"avx512_bf16"})
    lite, _, _ = build_model("efficientnet_lite0", None, 0)
    resnet, _, _ = build_model("stratonet18", None, 0)
    chosen = resolve_train_precision("auto", CPU, model=lite)
    assert chosen.name == "fp32" and "TapEfficientNet" in chosen.reason
    assert resolve_train_precision("auto", CPU, model=resnet).name == "bf16"
    assert resolve_train_precision("auto", torch.device("cuda"), model=lite).name == "bf16"
    assert resolve_train_precision("bf16", CPU, model=lite).name == "bf16"  # asked for: obeyed


def test_autocast_for_runs_bf16_on_cpu():
    lin = torch.nn.Linear(8, 4)
    with autocast_for(CPU, True):
        assert lin(torch.ones(2, 8)).dtype == torch.bfloat16
    with autocast_for(CPU, False):
        assert lin(torch.ones(2, 8)).dtype == torch.float32


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_tiny_training_run_records_its_precision(tmp_path, precision):
    shapes = make_image_folder(tmp_path / "shapes", 4, size=48)
    argv = ["train", "classifier", shapes, "-o", tmp_path / "run", "--model", "stratonet18", "--epochs", "2",
            "--val-fraction", "0.34", "--resize", "40", "--crop", "32", "--batch-size", "16",
            "--plateau-patience", "0", "--precision", precision]
    assert run_cli(argv) == 0
    d = tmp_path / "run" / "train" / "classifier_stratonet18"
    m = json.loads((d / "metrics.json").read_text())
    assert m["precision"]["precision"] == precision and m["precision"]["requested"] == precision
    assert m["config"]["precision"] == precision
    epochs = [float(x) for x in (d / "epochs.csv").read_text().splitlines()[1:] for x in [x.split(",")[1]]]
    assert all(e == e and e < 1e3 for e in epochs)  # finite training losses
    from stratonet.models import load_checkpoint

    model, card = load_checkpoint(d / "best")
    assert card["training_precision"]["precision"] == precision
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
