"""Model API: registry, parameter counts, taps, truncation, heads, determinism, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from stratonet.core.errors import ConfigError, InputFileError
from stratonet.models import create_model, list_models, load_checkpoint, save_checkpoint
from stratonet.models.eca import eca_kernel_size


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_registry_names():
    names = list_models()
    for fam in ("stratonet", "resnet", "ecaresnet"):
        for d in (18, 34, 50, 101, 152):
            assert f"{fam}{d}" in names
    with pytest.raises(ConfigError, match="unknown model 'resnet51'"):
        create_model("resnet51")


def test_parameter_counts():
    # thesis: truncated StratoNet-50 ~8.5 M; ResNet-50 with its 1000-class head 25.6 M +- 0.1 M
    assert 8.4e6 <= n_params(create_model("stratonet50")) <= 8.6e6
    assert abs(n_params(create_model("resnet50", num_classes=1000)) - 25.6e6) <= 0.1e6
    assert abs(n_params(create_model("resnet18", num_classes=1000)) - 11.69e6) <= 0.01e6
    # ECA adds only a few hundred weights
    eca = n_params(create_model("ecaresnet50", num_classes=1000)) - n_params(create_model("resnet50", num_classes=1000))
    assert 0 < eca < 1000


def test_eca_kernel_size():
    assert [eca_kernel_size(c) for c in (64, 128, 256, 512, 1024, 2048)] == [3, 5, 5, 5, 5, 7]


def test_stratonet50_default_taps_and_shapes():
    m = create_model("stratonet50", seed=0)
    assert m.tap_names == ["low", "medium", "high"]
    assert [f["module"] for f in m.feature_info] == ["layer3.3.bn3", "layer3.3", "layer3.5"]
    assert all(f["channels"] == 1024 and f["reduction"] == 16 for f in m.feature_info)
    assert not hasattr(m, "layer4") and len(m.layer3) == 6  # truncated after the last tap
    with torch.inference_mode():
        taps = m.forward_taps(torch.rand(2, 3, 64, 64))
        out = m(torch.rand(2, 3, 64, 64))
    assert list(taps) == ["low", "medium", "high"]
    assert all(t.shape == (2, 1024) and t.dtype == torch.float32 for t in taps.values())
    assert out.shape == (2, 3072)
    # low (before the ECA gate and residual sum) and medium (block output) differ
    assert not torch.allclose(taps["low"], taps["medium"])


def test_resnet_taps_are_stage_outputs():
    m = create_model("resnet18")
    assert m.tap_names == ["layer1", "layer2", "layer3", "layer4"]
    with torch.inference_mode():
        taps = m.forward_taps(torch.rand(1, 3, 64, 64))
    assert [t.shape[1] for t in taps.values()] == [64, 128, 256, 512]
    for name in ("stratonet18", "stratonet34", "stratonet101"):
        mods = [f["module"] for f in create_model(name).feature_info]
        assert len(set(mods)) == 3, (name, mods)


def test_any_module_can_be_tapped_and_truncates():
    m = create_model("resnet50", taps=["layer2.1.conv2", "layer2.2"])
    assert m.tap_names == ["layer2.1.conv2", "layer2.2"]
    assert not hasattr(m, "layer3") and len(m.layer2) == 3
    with torch.inference_mode():
        taps = m.forward_taps(torch.rand(1, 3, 64, 64))
    assert taps["layer2.1.conv2"].shape == (1, 128) and taps["layer2.2"].shape == (1, 512)
    named = create_model("stratonet50", taps={"a": "layer1.0"})
    assert named.tap_names == ["a"] and not hasattr(named, "layer2")
    with pytest.raises(ConfigError, match="unknown module"):
        create_model("stratonet50", taps=["layer9"])


def test_one_channel_stem_and_heads():
    m = create_model("stratonet18", in_chans=1, num_classes=7)
    assert m.conv1.weight.shape == (64, 1, 7, 7)
    assert m.fc.in_features == sum(f["channels"] for f in m.feature_info)
    with torch.inference_mode():
        assert m(torch.rand(2, 1, 64, 64)).shape == (2, 7)
    r = create_model("resnet34", num_classes=10)
    assert r.fc.in_features == 512
    with torch.inference_mode():
        assert r(torch.rand(2, 3, 64, 64)).shape == (2, 10)


def test_seeded_initialisation_is_deterministic():
    a, b, c = create_model("stratonet18", seed=3), create_model("stratonet18", seed=3), create_model("stratonet18", seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["conv1.weight"], sc["conv1.weight"])
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(a(x), b(x))


def test_checkpoint_round_trip(tmp_path):
    m = create_model("stratonet18", seed=5, num_classes=4)
    card_path = save_checkpoint(m, tmp_path / "ck", {"training_data": "test", "epochs": 2, "input_size": 128})
    card = json.loads(card_path.read_text())
    assert card["input_size"] == 128 and card["epochs"] == 2 and len(card["sha256"]) == 64
    assert card["taps"] == m.tap_map and card["in_chans"] == 3
    m2, card2 = load_checkpoint(tmp_path / "ck.safetensors")
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(m(x), m2(x))
    # a tampered weights file is refused
    (tmp_path / "ck.safetensors").write_bytes((tmp_path / "ck.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(InputFileError, match="sha256"):
        load_checkpoint(tmp_path / "ck")


def test_fused_batchnorm_keeps_taps_and_values():
    import copy

    m = create_model("stratonet18", seed=2)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for bn in (mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    f = copy.deepcopy(m).fuse_batchnorm()
    assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in f.modules())
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        a, b = m.forward_taps(x), f.forward_taps(x)
    assert list(b) == ["low", "medium", "high"]
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5), k
