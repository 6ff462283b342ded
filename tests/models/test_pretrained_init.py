"""ResNet-D (timm's ecaresnet50d layout) import, and StratoNet initialised from ImageNet ResNet weights."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from conftest import run_cli
from stratonet.models import create_model, load_checkpoint, model_card
from test_weights import reference_state_dict


def timm_resnet50d_state_dict(eca: bool = True, seed: int = 0) -> dict:
    """Random tensors in timm's ``ecaresnet50d`` key layout (deep stem conv1.0/.3/.6, avg-pool shortcuts
    ``downsample.1/.2``, ECA gate ``se.conv``), written from the published layout independently of our model."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def rnd(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    def bn(prefix: str, c: int) -> None:
        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"] = 1 + rnd(c), rnd(c)
        sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"] = rnd(c), rnd(c).abs() + 0.5
        sd[f"{prefix}.num_batches_tracked"] = torch.tensor(100)

    sd["conv1.0.weight"] = rnd(32, 3, 3, 3)
    bn("conv1.1", 32)
    sd["conv1.3.weight"] = rnd(32, 32, 3, 3)
    bn("conv1.4", 32)
    sd["conv1.6.weight"] = rnd(64, 32, 3, 3)
    bn("bn1", 64)
    inplanes = 64
    for s, (planes, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for b in range(n):
            p, out = f"layer{s + 1}.{b}", planes * 4
            sd[f"{p}.conv1.weight"] = rnd(planes, inplanes, 1, 1)
            sd[f"{p}.conv2.weight"] = rnd(planes, planes, 3, 3)
            sd[f"{p}.conv3.weight"] = rnd(out, planes, 1, 1)
            for i, c in ((1, planes), (2, planes), (3, out)):
                bn(f"{p}.bn{i}", c)
            if b == 0:
                sd[f"{p}.downsample.1.weight"] = rnd(out, inplanes, 1, 1)
                bn(f"{p}.downsample.2", out)
            if eca:
                t = int(abs((math.log2(out) + 1) / 2))
                sd[f"{p}.se.conv.weight"] = rnd(1, 1, t if t % 2 else t + 1)
            inplanes = out
    sd["fc.weight"], sd["fc.bias"] = rnd(1000, 2048), rnd(1000)
    return sd


def test_ecaresnet50d_import_exact_and_fused(tmp_path, capsys):
    src = timm_resnet50d_state_dict()
    torch.save(src, tmp_path / "ecaresnet50d.pth")
    assert run_cli(["weights", "import", tmp_path / "ecaresnet50d.pth", "-o", tmp_path / "eca50d"]) == 0, \
        capsys.readouterr().err
    model, card = load_checkpoint(tmp_path / "eca50d")
    assert card["model"] == "ecaresnet50d" and "ResNet-D" in card["architecture"]
    own = model.state_dict()
    assert set(own) == {k.replace(".se.conv.", ".attn.conv.") for k in src}
    assert all(torch.equal(own[k.replace(".se.conv.", ".attn.conv.")], v) for k, v in src.items())
    # timm reports 25.58 M parameters for ecaresnet50d
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == 25.58
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ref = model.forward_taps(x)
        fused = copy.deepcopy(model).fuse_batchnorm().forward_taps(x)
    for k in ref:  # random weights give large activations: compare relative to the norm
        assert ((ref[k] - fused[k]).norm() / ref[k].norm()).item() < 1e-4, k
    # the same weights, truncated, give a fully pretrained StratoNet-50d (ECA gates included)
    assert run_cli(["weights", "import", tmp_path / "ecaresnet50d.pth", "-o", tmp_path / "sn50d",
                    "--model", "stratonet50d"]) == 0
    sn, sn_card = load_checkpoint(tmp_path / "sn50d")
    assert sn_card["model"] == "stratonet50d" and not hasattr(sn, "layer4")
    assert torch.equal(sn.layer3[3].attn.conv.weight, src["layer3.3.se.conv.weight"])
    # a deep-stem source does not go into a plain-stem model
    assert run_cli(["weights", "import", tmp_path / "ecaresnet50d.pth", "-o", tmp_path / "x",
                    "--model", "stratonet50"]) != 0
    assert "deep (ResNet-D) stem" in capsys.readouterr().err


def test_stratonet_initialised_from_imagenet_resnet(tmp_path, monkeypatch):
    from stratonet.models.convert import convert_checkpoint

    monkeypatch.setenv("STRATONET_CACHE", str(tmp_path / "cache"))
    src = reference_state_dict(50)  # torchvision resnet50 layout
    torch.save(src, tmp_path / "resnet50-test.pth")
    # a cached checkpoint under the registered name, as `weights fetch resnet50.tv_in1k` leaves it
    convert_checkpoint(tmp_path / "resnet50-test.pth", tmp_path / "cache" / "checkpoints" / "resnet50.tv_in1k",
                       model_name="resnet50", name="resnet50.tv_in1k", card={"source": "test-built"})
    seeded = create_model("stratonet50", seed=4)
    model = create_model("stratonet50", seed=4, init="resnet50.imagenet")
    rep = model.init_report
    own = model.state_dict()
    eca = [k for k in own if ".attn." in k]
    assert sorted(rep["kept_own_init"]) == sorted(eca) and len(eca) == 3 + 4 + 6  # every block's gate, no more
    for k in eca:  # the gates keep StratoNet's own (seeded) initialisation
        assert torch.equal(own[k], seeded.state_dict()[k])
    for k in own:
        if k not in eca and not k.endswith("num_batches_tracked"):
            assert torch.equal(own[k], src[k]), k
    assert rep["source"] == "resnet50.tv_in1k" and len(rep["sha256"]) == 64 and rep["shape_mismatch"] == []
    assert rep["unused_source_tensors"] > 0 and any(k.startswith(("layer4", "fc")) for k in rep["unused_source_examples"])
    card = model_card(model)
    assert card["init"]["loaded_tensors"] == rep["loaded_tensors"] and card["init"]["kept_own_init"] == rep["kept_own_init"]

    # an original .pth file, into a 1-channel stem (RGB filters summed)
    gray = create_model("stratonet50", in_chans=1, init=tmp_path / "resnet50-test.pth")
    assert torch.allclose(gray.conv1.weight, src["conv1.weight"].sum(1, keepdim=True))
    with pytest.raises(Exception, match="no registered ImageNet weights"):
        create_model("stratonet50", init="stratonet50.imagenet")
