"""Multi-crop views for microscopy: one stain per view, geometry and intensity changes that keep biology.

Each sample is one channel image of one site around one point (a nucleus centre, or anywhere for tiles). From it
come ``n_global`` large views and ``n_local`` small ones (multi-crop, Caron et al. 2021):

- random resized crop: a square of side ``region * s`` around the point (``s`` from ``global_scale`` or
  ``local_scale``, the centre jittered by an eighth of the region), resized to ``global_size`` / ``local_size``;
- a random flip and a random multiple of 90 degrees (microscopy has no up);
- intensity scale and offset (``x * a + b``, clipped to [0, 1]), standing in for stain and exposure changes;
- Gaussian blur (focus) and Gaussian noise (shot and read noise), each with probability 1/2.

No colour jitter: each view holds a single stain, fed to the network as the extraction feeds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ViewConfig:
    """How views are drawn (pixel sizes at the image's native resolution)."""

    region: int = 128  # side of the native-resolution square a global view may cover at most
    global_size: int = 96
    local_size: int = 48
    n_global: int = 2
    n_local: int = 4
    global_scale: tuple[float, float] = (0.6, 1.0)
    local_scale: tuple[float, float] = (0.25, 0.5)
    gain: tuple[float, float] = (0.7, 1.3)
    offset: tuple[float, float] = (-0.1, 0.1)
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    noise_std: tuple[float, float] = (0.0, 0.05)

    def to_dict(self) -> dict:
        return asdict(self)


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def crop_resized(plane: torch.Tensor, cy: float, cx: float, side: int, size: int) -> torch.Tensor:
    """The ``side`` x ``side`` square centred near (cy, cx), shifted inside the image, resized to
    ``(1, size, size)``."""
    h, w = plane.shape
    side = max(2, min(int(side), h, w))
    y0 = int(min(max(round(cy - side / 2), 0), h - side))
    x0 = int(min(max(round(cx - side / 2), 0), w - side))
    patch = plane[y0:y0 + side, x0:x0 + side].float()[None, None]
    if side != size:
        patch = F.interpolate(patch, size=(size, size), mode="bilinear", antialias=side > size, align_corners=False)
    return patch[0]


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(1, S, S)`` (reflect padding)."""
    r = max(1, int(round(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    k = k / k.sum()
    y = F.pad(x[None], (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    y = F.conv2d(y, k.view(1, 1, -1, 1))
    return y[0]


def augment(view: torch.Tensor, cfg: ViewConfig, g: torch.Generator) -> torch.Tensor:
    """Flip, rotate by k x 90 degrees, scale/offset intensity, blur and add noise (each draw from ``g``)."""
    if float(torch.rand((), generator=g)) < 0.5:
        view = torch.flip(view, dims=(-1,))
    view = torch.rot90(view, int(torch.randint(0, 4, (), generator=g)), dims=(-2, -1))
    view = view * _uniform(g, *cfg.gain) + _uniform(g, *cfg.offset)
    if float(torch.rand((), generator=g)) < 0.5:
        view = gaussian_blur(view, _uniform(g, *cfg.blur_sigma))
    if float(torch.rand((), generator=g)) < 0.5:
        view = view + _uniform(g, *cfg.noise_std) * torch.randn(view.shape, generator=g)
    return view.clamp(0.0, 1.0).contiguous()


def multi_crop(plane: torch.Tensor, cy: float, cx: float, cfg: ViewConfig, g: torch.Generator) -> list[torch.Tensor]:
    """``n_global`` then ``n_local`` augmented ``(1, S, S)`` views of ``plane`` around (cy, cx)."""
    views = []
    jitter = cfg.region / 8
    for n, size, scale in ((cfg.n_global, cfg.global_size, cfg.global_scale),
                           (cfg.n_local, cfg.local_size, cfg.local_scale)):
        for _ in range(n):
            side = int(round(cfg.region * _uniform(g, *scale)))
            y, x = cy + _uniform(g, -jitter, jitter), cx + _uniform(g, -jitter, jitter)
            views.append(augment(crop_resized(plane, y, x, side, size), cfg, g))
    return views


def batch_views(samples: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """Per-sample view lists -> one ``(B, 1, S, S)`` tensor per view position."""
    return [torch.stack([s[v] for s in samples]) for v in range(len(samples[0]))]
