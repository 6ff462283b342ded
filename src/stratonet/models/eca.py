"""Efficient Channel Attention (Wang et al. 2020, ECA-Net).

Global average pool, a 1-D convolution across channels whose kernel size adapts to the channel count, and a
sigmoid gate that rescales each channel.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """Adaptive kernel size ``k = odd(|log2(C) / gamma + b / gamma|)`` (the nearest odd number at or above).

    Examples: 64 -> 3, 128 -> 5, 256 -> 5, 512 -> 5, 1024 -> 5, 2048 -> 7.
    """
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class ECA(nn.Module):
    """ECA gate for a ``(B, C, H, W)`` tensor.

    Parameters
    ----------
    channels : int
        Number of input channels; sets the kernel size.
    gamma, b : int
        The paper's constants (2 and 1).
    """

    def __init__(self, channels: int, gamma: int = 2, b: int = 1):
        super().__init__()
        self.kernel_size = eca_kernel_size(channels, gamma, b)
        self.conv = nn.Conv1d(1, 1, self.kernel_size, padding=(self.kernel_size - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3), keepdim=False)  # (B, C)
        y = self.conv(y.unsqueeze(1)).squeeze(1)  # 1-D conv across channels
        return x * torch.sigmoid(y)[:, :, None, None]
