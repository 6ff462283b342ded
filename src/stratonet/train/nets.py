"""Networks for training: the CPJUMP1-style 3-block CNN, and registered models (ResNet, StratoNet) with a head."""

from __future__ import annotations

import torch
from torch import nn

from stratonet.core.errors import ConfigError, NotAvailableError

#: ``--model`` aliases of ``train treatment``
TREATMENT_ALIASES = {"stratonet": "stratonet18", "resnet": "resnet18"}
PIXEL_MODELS = ("rf", "svm")


class CNN3(nn.Module):
    """Three conv blocks (3x3 conv, batch norm, ReLU, 2x2 max pool; 32-64-128 channels), dropout, a linear head.

    The CPJUMP1 study's image-level baseline, with batch norm added for stable training. Global spatial pooling to
    4x4 makes it work for any input size >= 32.

    Parameters
    ----------
    in_chans : int
        Input channels (1 for grayscale).
    num_classes : int
    dropout : float
    width : int
        Channels of the first block (doubled per block).
    """

    def __init__(self, in_chans: int = 1, num_classes: int = 2, dropout: float = 0.5, width: int = 32):
        super().__init__()
        layers = []
        c_in = in_chans
        for i in range(3):
            c_out = width * 2**i
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(c_in * 16, num_classes)
        self.in_chans = in_chans
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.head(self.dropout(x))


def build_network(name: str, in_chans: int, num_classes: int, seed: int = 0, init: str | None = None) -> nn.Module:
    """A freshly initialised (seeded) network for ``name``: ``cnn3`` or any registered model of stratonet.models.

    Registered models get their classification head from ``create_model(..., num_classes=...)`` (for StratoNet, a
    head on the concatenated pooled taps). ``init`` (a weights name or a checkpoint / ``.pth`` path) loads every
    pretrained tensor that matches by name and shape, as ``create_model(..., init=...)`` does; the report of what
    was loaded is ``model.init_report`` and goes into the saved model card.
    """
    name = TREATMENT_ALIASES.get(name, name)
    if init is not None and name == "cnn3":
        raise ConfigError("--init needs a registered model (e.g. stratonet50, resnet50); cnn3 has no pretrained "
                          "weights")
    if name == "cnn3":
        torch.manual_seed(seed)
        return CNN3(in_chans=in_chans, num_classes=num_classes)
    try:
        from stratonet.models import create_model, list_models
    except ImportError as exc:  # the model registry ships with the deep-features module
        raise NotAvailableError(f"model '{name}' needs stratonet.models, which is not available ({exc})") from exc
    if name not in list_models():
        raise ConfigError(f"unknown model '{name}' (choose cnn3, rf, svm or one of: {', '.join(list_models())})")
    return create_model(name, seed=seed, in_chans=in_chans, num_classes=num_classes, init=init)


def canonical_name(name: str) -> str:
    """The registered name behind an alias (``stratonet`` -> ``stratonet18``)."""
    return TREATMENT_ALIASES.get(name, name)
