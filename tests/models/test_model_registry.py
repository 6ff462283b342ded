"""The model registry: families register specs (builder, default taps, input size, known weights); no name parsing."""

from __future__ import annotations

import pytest
import torch

from stratonet.core.errors import ConfigError
from stratonet.models import create_model, get_model_spec, list_models, registry
from stratonet.models.pretrained import REGISTRY as WEIGHTS


@pytest.mark.parametrize("name", ["stratonet18", "resnet18", "ecaresnet18", "stratonet50d", "efficientnet_lite0"])
def test_a_registered_spec_builds_its_model_with_its_default_taps(name):
    spec = get_model_spec(name)
    model = create_model(name, seed=0)
    assert model.model_name == name and dict(model.tap_map) == spec.default_taps
    assert spec.input_size in (224, 240, 260) and spec.architecture


def test_every_model_has_a_spec_and_the_known_weights_agree_with_their_sources():
    """The tags a family registers name exactly the weights pretrained.py knows for that model."""
    registered = {n for m in list_models() for n in registry.pretrained_names(m)}
    assert registered == {e.name for e in WEIGHTS.values()}
    assert all(WEIGHTS[n].model == n.split(".")[0] for n in registered)


def test_a_new_family_registers_itself_without_touching_the_registry():
    """A model whose name follows no pattern is built from its spec alone."""

    def build(name, seed=0, in_chans=3, num_classes=None, taps=None):
        torch.manual_seed(seed)
        net = torch.nn.Conv2d(in_chans, 4, 3)
        net.model_name = name
        return net

    spec = registry.ModelSpec(name="tiny_test_net", family="tiny", depth=1, builder=build,
                              default_taps={"out": ""}, input_size=32)
    registry.register_model(spec)
    try:
        assert "tiny_test_net" in list_models()
        assert create_model("tiny_test_net", seed=3).model_name == "tiny_test_net"
        assert registry.parse_name("tiny_test_net") == ("tiny", 1) and not registry.is_efficientnet("tiny_test_net")
    finally:
        registry._REGISTRY.pop("tiny_test_net")


def test_an_unknown_model_is_one_config_error_listing_the_models():
    with pytest.raises(ConfigError, match="unknown model 'stratonet51'.*stratonet50"):
        create_model("stratonet51")
