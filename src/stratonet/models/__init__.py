"""StratoNet, ResNet and ECA-ResNet models with named, pooled taps; checkpoints with model cards.

>>> from stratonet.models import create_model
>>> m = create_model("stratonet50", seed=0)
>>> m.tap_names
['low', 'medium', 'high']
"""

from stratonet.models.checkpoint import load_checkpoint, model_card, save_checkpoint
from stratonet.models.registry import create_model, default_taps, list_models

__all__ = ["create_model", "list_models", "default_taps", "save_checkpoint", "load_checkpoint", "model_card"]
