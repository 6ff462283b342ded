"""``create_model``: a registered network, seeded, optionally started from pretrained weights.

The registry (:mod:`stratonet.models.registry`) builds untrained networks and knows nothing of weight files; this
module adds ``init=`` on top, through :mod:`stratonet.models.pretrained`, so that neither imports the other's user.
"""

from __future__ import annotations

from stratonet.models import registry


def create_model(name: str, seed: int = 0, in_chans: int = 3, num_classes: int | None = None,
                 taps=None, init=None):
    """Build a registered model, initialised deterministically from ``seed``.

    Parameters
    ----------
    name : str
        One of :func:`~stratonet.models.registry.list_models`.
    seed : int
        Seed of the weight initialisation (an untrained network is "untrained (seed N)").
    in_chans : int
        1 for a grayscale stem, 3 for the RGB stem (grayscale channels are then replicated).
    num_classes : int, optional
        Adds a classification head (pooled taps -> linear for StratoNet; the usual ``fc`` for (ECA-)ResNets).
    taps : None, list of str or dict
        Module names to tap (``["layer3.3.conv3", ...]``) or ``{tap_name: module_name}``; None gives the defaults.
        Everything after the last tap is dropped.
    init : str or Path, optional
        Start from pretrained weights: every tensor whose name and shape match is loaded, the rest (e.g. the ECA
        gates of StratoNet from a plain ResNet) keeps its seeded initialisation. A weights name
        (``resnet50.tv_in1k``; ``resnet50.imagenet`` picks the first registered ImageNet weights of resnet50),
        a checkpoint or an original ``.pth``. What was loaded is in ``model.init_report`` and the model card.

    Returns
    -------
    TapResNet or TapEfficientNet
        In eval mode, with ``model_name``, ``seed``, ``tap_names`` and ``feature_info``.
    """
    model = registry.create_model(name, seed=seed, in_chans=in_chans, num_classes=num_classes, taps=taps)
    if init is not None:
        from stratonet.models.pretrained import init_from_pretrained

        init_from_pretrained(model, init)
    return model.eval()
