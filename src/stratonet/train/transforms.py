"""Image transforms in plain torch, on ``(C, H, W)`` float tensors.

Train (thesis): resize the shorter side to 256, random crop 224, horizontal flip, normalise.
Val: resize 256, centre crop 224, normalise. Treatment images add vertical flips and rot90.
Randomness comes from an explicit ``torch.Generator`` when given, so seeded runs repeat.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class Resize:
    """Resize so the shorter side is ``size`` (bilinear, anti-aliased when shrinking)."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if min(h, w) == self.size:
            return x
        scale = self.size / min(h, w)
        hw = (max(self.size, round(h * scale)), max(self.size, round(w * scale)))
        return F.interpolate(x[None], size=hw, mode="bilinear", align_corners=False, antialias=scale < 1)[0]

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class CenterCrop:
    """Central ``size`` x ``size`` crop."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.size > h or self.size > w:
            raise ValueError(f"crop {self.size} is larger than the image {h}x{w}")
        y0, x0 = (h - self.size) // 2, (w - self.size) // 2
        return x[..., y0:y0 + self.size, x0:x0 + self.size]

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class RandomCrop:
    """Random ``size`` x ``size`` crop."""

    def __init__(self, size: int, generator: torch.Generator | None = None):
        self.size = int(size)
        self.generator = generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.size > h or self.size > w:
            raise ValueError(f"crop {self.size} is larger than the image {h}x{w}")
        y0 = int(torch.randint(0, h - self.size + 1, (1,), generator=self.generator))
        x0 = int(torch.randint(0, w - self.size + 1, (1,), generator=self.generator))
        return x[..., y0:y0 + self.size, x0:x0 + self.size]

    def __repr__(self) -> str:
        return f"RandomCrop({self.size})"


class RandomFlip:
    """Flip along ``dim`` (-1 horizontal, -2 vertical) with probability ``p``."""

    def __init__(self, dim: int = -1, p: float = 0.5, generator: torch.Generator | None = None):
        self.dim, self.p, self.generator = dim, p, generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if float(torch.rand((1,), generator=self.generator)) < self.p:
            return x.flip(self.dim)
        return x

    def __repr__(self) -> str:
        return f"RandomFlip(dim={self.dim}, p={self.p})"


class RandomRot90:
    """Rotate by a random multiple of 90 degrees (square images keep their shape)."""

    def __init__(self, generator: torch.Generator | None = None):
        self.generator = generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        k = int(torch.randint(0, 4, (1,), generator=self.generator))
        return torch.rot90(x, k, dims=(-2, -1)) if k else x

    def __repr__(self) -> str:
        return "RandomRot90()"


class Normalize:
    """Subtract a per-channel mean and divide by a per-channel std (dataset-level statistics, never per image)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = torch.as_tensor(list(mean), dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.as_tensor(list(std), dtype=torch.float32).view(-1, 1, 1).clamp_min(1e-8)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


class RepeatChannels:
    """Repeat a 1-channel image to ``n`` channels (a grayscale image into a 3-channel stem)."""

    def __init__(self, n: int):
        self.n = int(n)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == self.n:
            return x
        if x.shape[0] != 1:
            raise ValueError(f"cannot turn a {x.shape[0]}-channel image into {self.n} channels")
        return x.expand(self.n, *x.shape[1:]).contiguous()

    def __repr__(self) -> str:
        return f"RepeatChannels({self.n})"


def classifier_transforms(
    resize: int, crop: int, mean: Sequence[float], std: Sequence[float], generator: torch.Generator | None = None
) -> tuple[Compose, Compose]:
    """(train, val) transforms of ``train classifier``: resize + random crop + hflip / resize + centre crop."""
    train = Compose([Resize(resize), RandomCrop(crop, generator), RandomFlip(-1, 0.5, generator), Normalize(mean, std)])
    val = Compose([Resize(resize), CenterCrop(crop), Normalize(mean, std)])
    return train, val


def treatment_transforms(
    crop: int, mean: Sequence[float], std: Sequence[float], generator: torch.Generator | None = None
) -> tuple[Compose, Compose]:
    """(train, val) transforms of ``train treatment``: flips, rot90, random crop / centre crop; dataset normalisation."""
    train = Compose([
        RandomCrop(crop, generator), RandomFlip(-1, 0.5, generator), RandomFlip(-2, 0.5, generator),
        RandomRot90(generator), Normalize(mean, std),
    ])
    val = Compose([CenterCrop(crop), Normalize(mean, std)])
    return train, val
