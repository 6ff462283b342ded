"""What every tapped network shares: named taps pooled by forward hooks, truncation, feature_info, heads, BN folding.

A subclass builds its layers, then calls :meth:`TappedNet._setup_taps`; it supplies ``_body(x)`` (the trunk up to
its last kept module) and ``_truncate(module_names)`` (drop what lies after the last tap).
"""

from __future__ import annotations

import torch
from torch import nn

from stratonet.core.errors import ConfigError


class TappedNet(nn.Module):
    """Base class: the output of each tapped module is global-average-pooled to ``(B, C)`` as it is computed."""

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _setup_taps(self, taps, truncate: bool, num_classes: int | None, head: str, final_module: str,
                    final_channels: int, examples: str) -> None:
        """Resolve taps, truncate, measure ``feature_info``, add the head and hook the taps.

        Parameters
        ----------
        taps : dict or sequence
            Tap name -> module name, or module names (each its own tap name).
        final_module, final_channels : str, int
            The module the ``"final"`` head needs, and its channels.
        examples : str
            Module names quoted in the error for an unknown tap.
        """
        tap_map = ({str(k): str(v) for k, v in taps.items()} if isinstance(taps, dict)
                   else {str(v): str(v) for v in taps})
        if not tap_map:
            raise ConfigError("a model needs at least one tap")
        modules = dict(self.named_modules())
        bad = [m for m in tap_map.values() if m not in modules or m == ""]
        if bad:
            raise ConfigError(f"unknown module(s) to tap: {bad} (e.g. {examples})")
        self.tap_map = tap_map
        self.tap_names = list(tap_map)
        if truncate:
            self._truncate(list(tap_map.values()))
        self.feature_info = self._feature_info()
        self.head_type = head
        self.num_classes = num_classes
        self.fc: nn.Module | None = None
        if num_classes:
            if head == "final":
                if not hasattr(self, final_module):
                    raise ConfigError(f"the 'final' head needs {final_module}; tap it or use the taps head")
                self.fc = nn.Linear(final_channels, num_classes)
            else:
                self.fc = nn.Linear(sum(f["channels"] for f in self.feature_info), num_classes)
        self._pooled: dict[str, torch.Tensor] = {}
        self._last: torch.Tensor | None = None
        self._hooks: list = []
        self._register_hooks()

    def _feature_info(self) -> list[dict]:
        """Channels and reduction of each tap, from a tiny dry run."""
        was_training = self.training
        self.eval()
        shapes = {}
        modules = dict(self.named_modules())
        hooks = [modules[name].register_forward_hook(lambda m, i, o, tap=tap: shapes.__setitem__(tap, tuple(o.shape)))
                 for tap, name in self.tap_map.items()]
        with torch.no_grad():
            self._body(torch.zeros(1, self.in_chans, 64, 64))
        for h in hooks:
            h.remove()
        self.train(was_training)
        return [{"name": tap, "module": self.tap_map[tap], "channels": shapes[tap][1],
                 "reduction": 64 // shapes[tap][2]} for tap in self.tap_map]

    def _register_hooks(self) -> None:
        for h in self._hooks:
            h.remove()
        kept = dict(self.named_modules())
        self._hooks = [kept[name].register_forward_hook(self._make_hook(tap)) for tap, name in self.tap_map.items()]

    def _make_hook(self, tap: str):
        def hook(module, inputs, output):
            # pool at once (float32), so no feature map is kept and later in-place ops cannot alter it
            self._pooled[tap] = output.float().mean((2, 3))
        return hook

    def _fold_batchnorm(self, pairs: list[tuple[str, str]]) -> "TappedNet":
        """Fold each ``(conv, bn)`` attribute pair found on any module; the BatchNorm becomes an identity of the same
        name, so taps on it still read the same tensor (eval mode only)."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        if self.training:
            raise RuntimeError("fuse_batchnorm is for eval mode only")
        for module in list(self.modules()):
            for conv_name, bn_name in pairs:
                conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                    setattr(module, bn_name, nn.Identity())
        self._register_hooks()
        self.fused = True
        return self

    def forward_taps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Tap name -> ``(B, C_tap)`` global-average-pooled features (float32), in tap order."""
        self._pooled = {}
        last = self._body(x)
        out = {tap: self._pooled[tap] for tap in self.tap_names}
        self._pooled = {}
        self._last = last
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` with a head, else the concatenated pooled taps ``(B, sum C_tap)``."""
        taps = self.forward_taps(x)
        last, self._last = self._last, None
        if self.fc is None:
            return torch.cat(list(taps.values()), dim=1)
        if self.head_type == "final":
            return self.fc(torch.flatten(last.mean((2, 3)), 1))
        return self.fc(torch.cat(list(taps.values()), dim=1))


def adapt_stem(sd: dict[str, torch.Tensor], key: str, chans: int, source: str) -> None:
    """Make the stem convolution ``sd[key]`` take ``chans`` channels: an RGB stem is summed to a grayscale one."""
    from stratonet.core.errors import InputFileError

    w = sd[key]
    if chans != w.shape[1]:
        if chans == 1:
            sd[key] = w.sum(dim=1, keepdim=True)
        else:
            raise InputFileError(source, f"stem has {w.shape[1]} channel(s), cannot make {chans}")


def load_matching(model: nn.Module, sd: dict[str, torch.Tensor], name: str, source: str) -> list[str]:
    """Load every tensor of ``sd`` that ``model`` has; a missing or mis-shaped one is an error naming ``source``.

    Returns the sorted keys of ``sd`` the model does not have (e.g. layers after its last tap).
    """
    from stratonet.core.errors import InputFileError

    own = model.state_dict()
    dropped = sorted(k for k in sd if k not in own)
    kept = {k: v for k, v in sd.items() if k in own}
    missing = [k for k in own if k not in kept and not k.endswith("num_batches_tracked")]
    if missing:
        raise InputFileError(source, f"{len(missing)} weight(s) of {name} missing from the source, e.g. {missing[:3]}")
    bad = [k for k, v in kept.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        k = bad[0]
        raise InputFileError(source, f"shape mismatch for {k}: {tuple(kept[k].shape)} vs {tuple(own[k].shape)}")
    model.load_state_dict(kept, strict=False)
    model.seed = None
    return dropped
