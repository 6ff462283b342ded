"""`stratonet weights import`: torchvision ResNet and timm ECA-ResNet state dicts, round trip into extraction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from conftest import run_cli
from stratonet.models import load_checkpoint
from stratonet.core.tables import read_provenance

LAYERS = {18: (False, (2, 2, 2, 2)), 50: (True, (3, 4, 6, 3))}


def reference_state_dict(depth: int, eca_key: str | None = None, num_classes: int = 1000, seed: int = 0) -> dict:
    """Random tensors in torchvision's ResNet key layout (timm's ECA-ResNet adds ``<block>.<eca_key>.conv.weight``).

    Written from the published layouts, independently of our model code.
    """
    g = torch.Generator().manual_seed(seed)
    bottleneck, layers = LAYERS[depth]
    expansion = 4 if bottleneck else 1
    sd: dict[str, torch.Tensor] = {}

    def rnd(*shape):
        return torch.randn(*shape, generator=g)

    def bn(prefix: str, c: int) -> None:
        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"] = rnd(c), rnd(c)
        sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"] = rnd(c), rnd(c).abs() + 0.5
        sd[f"{prefix}.num_batches_tracked"] = torch.tensor(100)

    sd["conv1.weight"] = rnd(64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for s, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
        for b in range(n):
            p = f"layer{s + 1}.{b}"
            out = planes * expansion
            if bottleneck:
                sd[f"{p}.conv1.weight"] = rnd(planes, inplanes, 1, 1)
                sd[f"{p}.conv2.weight"] = rnd(planes, planes, 3, 3)
                sd[f"{p}.conv3.weight"] = rnd(out, planes, 1, 1)
                for i, c in ((1, planes), (2, planes), (3, out)):
                    bn(f"{p}.bn{i}", c)
            else:
                sd[f"{p}.conv1.weight"] = rnd(planes, inplanes, 3, 3)
                sd[f"{p}.conv2.weight"] = rnd(planes, planes, 3, 3)
                bn(f"{p}.bn1", planes)
                bn(f"{p}.bn2", planes)
            if b == 0 and (s > 0 or inplanes != out):
                sd[f"{p}.downsample.0.weight"] = rnd(out, inplanes, 1, 1)
                bn(f"{p}.downsample.1", out)
            if eca_key:
                t = int(abs((math.log2(out) + 1) / 2))
                sd[f"{p}.{eca_key}.conv.weight"] = rnd(1, 1, t if t % 2 else t + 1)
            inplanes = out
    sd["fc.weight"], sd["fc.bias"] = rnd(num_classes, 512 * expansion), rnd(num_classes)
    return sd


def test_torchvision_resnet18_round_trip(tmp_path, capsys):
    src = reference_state_dict(18, num_classes=10)
    torch.save(src, tmp_path / "tv.pth")
    assert run_cli(["weights", "import", tmp_path / "tv.pth", "-o", tmp_path / "ck", "--training-data", "test"]) == 0
    model, card = load_checkpoint(tmp_path / "ck")
    assert card["model"] == "resnet18" and card["num_classes"] == 10 and card["training_data"] == "test"
    assert card["input_size"] == 224 and len(card["sha256"]) == 64
    own = model.state_dict()
    assert set(own) == set(src)
    assert all(torch.equal(own[k], src[k]) for k in src)
    # a 1-channel stem sums the RGB filters
    assert run_cli(["weights", "import", tmp_path / "tv.pth", "-o", tmp_path / "ck1", "--in-chans", "1"]) == 0
    m1, _ = load_checkpoint(tmp_path / "ck1")
    assert torch.allclose(m1.conv1.weight, src["conv1.weight"].sum(1, keepdim=True))
    assert run_cli(["weights", "show", tmp_path / "ck"]) == 0
    assert '"model": "resnet18"' in capsys.readouterr().out


@pytest.mark.parametrize("eca_key,depth", [("se", 50), ("attn", 18)])
def test_timm_ecaresnet_into_stratonet_and_extract(eca_key, depth, tmp_path, capsys):
    src = reference_state_dict(depth, eca_key=eca_key)
    torch.save({"state_dict": src}, tmp_path / "timm.pth")
    rc = run_cli(["weights", "import", tmp_path / "timm.pth", "-o", tmp_path / "sn50", "--model", f"stratonet{depth}",
                  "--name", "eca-test"])
    assert rc == 0, capsys.readouterr().err
    model, card = load_checkpoint(tmp_path / "sn50.json")
    own = model.state_dict()
    assert card["model"] == f"stratonet{depth}" and not any(k.startswith(("layer4", "fc")) for k in own)
    for k, v in own.items():
        ref = src[k.replace(".attn.conv.", f".{eca_key}.conv.")]
        assert torch.equal(v, ref), k
    if eca_key == "attn":
        return  # the extraction round trip once is enough
    img = (np.random.default_rng(0).random((80, 80)) * 3000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "dna.tif", img)
    pd.DataFrame([{"Metadata_Plate": "P", "Metadata_Well": "A01", "Metadata_Site": 1,
                   "Path_DNA": str(tmp_path / "dna.tif")}]).to_parquet(tmp_path / "idx.parquet")
    out = tmp_path / "deep.parquet"
    rc = run_cli(["extract", "deep", tmp_path / "idx.parquet", "-o", out, "--weights", tmp_path / "sn50",
                  "--input-size", "64", "--workers", "0"])
    assert rc == 0, capsys.readouterr().err
    prov = read_provenance(out)
    assert prov["model"] == "stratonet50" and prov["weights"] == f"eca-test (sha256 {card['sha256'][:8]})"
    assert "untrained" not in capsys.readouterr().err
    assert pd.read_parquet(out).filter(like="DNA_high_").shape[1] == 1024


def test_import_errors_are_one_line(tmp_path, capsys):
    src = reference_state_dict(18)
    torch.save(src, tmp_path / "r18.pth")
    assert run_cli(["weights", "import", tmp_path / "r18.pth", "-o", tmp_path / "x", "--model", "stratonet18"]) != 0
    assert "no ECA gates" in capsys.readouterr().err
    deep_stem = {("conv1.0.weight" if k == "conv1.weight" else k): v for k, v in src.items()}
    torch.save(deep_stem, tmp_path / "d.pth")
    assert run_cli(["weights", "import", tmp_path / "d.pth", "-o", tmp_path / "y"]) != 0
    err = capsys.readouterr().err
    assert "d.pth" in err and "deep-stem" in err and "Traceback" not in err
    assert run_cli(["weights", "import", tmp_path / "nope.pth", "-o", tmp_path / "z"]) != 0
    assert "nope.pth: file not found" in capsys.readouterr().err


def test_checkpoint_retapped_for_extraction(tmp_path):
    from stratonet.extract.deep.run import build_model
    from stratonet.models import create_model, save_checkpoint

    src = create_model("resnet18", seed=9, num_classes=5)
    save_checkpoint(src, tmp_path / "r18", {"name": "r18-test"})
    net, card, label = build_model(None, tmp_path / "r18", seed=0, taps=["layer2.1", "layer3.0.bn2"])
    assert net.tap_names == ["layer2.1", "layer3.0.bn2"] and not hasattr(net, "layer4")
    assert torch.equal(net.layer2[1].conv1.weight, src.layer2[1].conv1.weight)
    assert label.startswith("r18-test (sha256 ")
    with pytest.raises(Exception, match="differs from the checkpoint"):
        build_model("resnet34", tmp_path / "r18", seed=0)


def test_training_summary_names_the_data():
    from stratonet.models.checkpoint import training_summary
    from stratonet.models.pretrained import IN1K

    assert training_summary({"training_data": None}) is None
    assert training_summary({"training_data": IN1K}) == IN1K
    card = {"training_data": {"plates": ["A", "B", "C", "D"], "n_sites": 9, "n_cells": None, "channels": ["DNA"],
                              "labels_read": False}}
    assert training_summary(card) == "4 plates (A, B, C and 1 more); 9 sites; channels DNA; labels not read"
