"""The flattened-pixel baseline: per site and channel, percentile rescale, anti-aliased resize, flatten.

Features are named ``<Channel>_px_<iiii>`` (row-major pixel index), so channels can be selected by name.
How a run executes (resumable parts, the resume check, the manifest) is :mod:`stratonet.runtime.pixel_run`
(``extract_pixel``); this module holds the configuration and the per-site compute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.core.errors import ConfigError
from stratonet.images.io import load_index_row
from stratonet.images.preprocess import rescale_percentile, resize
from stratonet.images.scaling import DEFAULT_SCALING, ScalingSpec, note_dtypes
from stratonet.images.transforms import rescale_to_unit
from stratonet.index.schema import channels_of

CELL_KEYS = ("Metadata_ObjectNumber", "Metadata_Cell_ID", "Metadata_CellID")


def pixel_feature_names(channels: Sequence[str], size: int) -> list[str]:
    """``<Channel>_px_<iiii>`` for every channel and pixel."""
    return [f"{ch}_px_{i:04d}" for ch in channels for i in range(size * size)]


def block_downsample(image: np.ndarray, size: int, oversample: int = 4) -> np.ndarray:
    """Average non-overlapping blocks so each side is still >= ``oversample * size`` pixels.

    Block averaging is itself an anti-aliasing filter; it spares the final Gaussian-prefiltered resize a
    very wide kernel (1080 -> 16 pixels would need sigma ~ 33), which makes it ~ 50x faster.
    """
    c, h, w = image.shape
    factor = max(1, min(h, w) // (oversample * size))
    if factor == 1:
        return image
    hh, ww = (h // factor) * factor, (w // factor) * factor
    y0, x0 = (h - hh) // 2, (w - ww) // 2
    crop = image[:, y0: y0 + hh, x0: x0 + ww]
    return crop.reshape(c, hh // factor, factor, ww // factor, factor).mean(axis=(2, 4))


def pixel_features(image: np.ndarray, size: int, low: float = 0.1, high: float = 99.9,
                   bounds: np.ndarray | None = None) -> np.ndarray:
    """``(C, H, W)`` -> ``C * size * size`` features: rescale to [0, 1], anti-aliased resize, flatten.

    Without ``bounds`` each channel is rescaled between its own ``low``/``high`` percentiles; ``bounds``
    (``(C, 2)``, e.g. plate percentiles or ``[0, dtype max]``) fixes the values mapped to 0 and 1.
    """
    if bounds is None:
        x = rescale_percentile(image, low=low, high=high)
    else:
        x = rescale_to_unit(image, bounds=np.asarray(bounds, dtype=np.float32)).numpy()
    return resize(block_downsample(x, size), size).reshape(-1)


@dataclass(frozen=True)
class PixelConfig:
    """What ``extract pixel`` computes: each channel resized to ``size`` x ``size`` (``channels``: default all in
    the index), the intensity ``scaling`` (its ``percentiles`` also serve ``image`` scaling) and ``on_error``
    (fail | skip: ``skip`` records bad sites in ``<out stem>.errors.csv``/``.parquet``)."""

    size: int = 16
    channels: tuple[str, ...] | None = None
    scaling: ScalingSpec = field(default_factory=ScalingSpec)
    on_error: str = "fail"

    @classmethod
    def from_options(cls, size: int = 16, channels: Sequence[str] | None = None, illum: bool = True,
                     on_error: str = "fail", low: float = 0.1, high: float = 99.9, scaling: str = DEFAULT_SCALING,
                     scaling_file=None, bit_depth: int | None = None, scaling_sites: int = 24,
                     seed: int = 0) -> "PixelConfig":
        """Build from the flat option names of ``stratonet extract pixel`` (``seed`` draws the plate-scaling sites)."""
        spec = ScalingSpec(mode=scaling, percentiles=(low, high), file=scaling_file, bit_depth=bit_depth,
                           sites=scaling_sites, seed=seed, illum=illum)
        return cls(size=size, channels=tuple(channels) if channels else None, scaling=spec, on_error=on_error)

    def check(self) -> None:
        """Options wrong before any input is read."""
        if self.size < 1:
            raise ConfigError(f"--size must be >= 1, got {self.size}")

    def resolve_channels(self, index: pd.DataFrame) -> list[str]:
        """The channels to use, each present in ``index``."""
        available = channels_of(index)
        channels = list(self.channels or available)
        missing = [c for c in channels if c not in available]
        if missing:
            raise ConfigError(f"channel(s) {missing} not in the index (has {available})")
        return channels

    def base_signature(self, channels: list[str], keys: list[str]) -> dict:
        """The resume signature up to the scaling."""
        sc = self.scaling
        return {"size": int(self.size), "channels": channels, "illum": bool(sc.illum),
                "percentiles": [sc.low, sc.high], "key_columns": keys}


def pixel_site(row, cfg: PixelConfig, channels: list[str], scale, names: list[str], meta_cols: list[str],
               seen_dtypes: dict) -> pd.DataFrame:
    """One site -> its row: metadata columns, then ``<Channel>_px_<iiii>`` (the files' dtypes noted in
    ``seen_dtypes``)."""
    sc = cfg.scaling
    dtype_of: list = []
    img = load_index_row(row, channels, illum=sc.illum, dtype_of=dtype_of)
    note_dtypes(seen_dtypes, row, dtype_of)
    feats = pixel_features(img, cfg.size, low=sc.low, high=sc.high, bounds=scale.bounds(row, dtype_of))
    rec = pd.DataFrame([feats], columns=names)
    for c in reversed(meta_cols):
        rec.insert(0, c, [row[c]])
    return rec


def pixel_provenance(cfg: PixelConfig, channels: list[str], scale, index: pd.DataFrame) -> dict:
    """The table's provenance."""
    return {"feature_set": "pixel", "size": int(cfg.size), "channels": channels, "scaling": scale.describe(),
            "illumination_corrected": bool(cfg.scaling.illum and any(c.startswith("Illum_") for c in index.columns))}


def pixel_config_record(cfg: PixelConfig, channels: list[str], scale) -> dict:
    """The manifest's ``config`` block."""
    sc = cfg.scaling
    return {"size": cfg.size, "channels": channels, "illum": sc.illum, "percentiles": [sc.low, sc.high],
            "scaling": scale.describe(),
            "on_error": cfg.on_error, "resize": "skimage.transform.resize, bilinear, anti-aliased"}
