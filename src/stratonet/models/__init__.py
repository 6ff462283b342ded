"""StratoNet, ResNet, ECA-ResNet and EfficientNet-Lite models with named, pooled taps; checkpoints with model cards.

>>> from stratonet.models import create_model
>>> m = create_model("stratonet50", seed=0)
>>> m.tap_names
['low', 'medium', 'high']

Importing this package registers the model families (:mod:`~stratonet.models.resnet`,
:mod:`~stratonet.models.efficientnet`) in :mod:`~stratonet.models.registry`.
"""

# each family registers its models on import; ResNets first, so list_models() keeps its order
from stratonet.models import resnet  # noqa: F401, I001
from stratonet.models import efficientnet  # noqa: F401, I001
from stratonet.models.checkpoint import load_checkpoint, model_card, save_checkpoint
from stratonet.models.factory import create_model
from stratonet.models.registry import default_taps, get_model_spec, list_models

__all__ = ["create_model", "list_models", "default_taps", "get_model_spec", "save_checkpoint", "load_checkpoint",
           "model_card"]
