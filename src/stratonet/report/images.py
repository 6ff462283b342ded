"""Site images for the report: thumbnails per channel, colour composites, outlines from classical masks.

Intensities are scaled per plate and channel (one pair of percentiles over all of the plate's sites), so that a
dim well looks dim next to a bright one; per-site autoscaling would hide exactly what a screen is judged by.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Display colours (RGB 0..1) of the usual Cell Painting channels; others get a colour from :data:`SPARE_COLOURS`.
CHANNEL_COLOURS = {
    "DNA": (0.15, 0.35, 1.0), "ER": (0.1, 1.0, 0.2), "RNA": (1.0, 0.85, 0.1), "AGP": (1.0, 0.15, 0.1),
    "Mito": (1.0, 0.2, 1.0), "GFP": (0.1, 1.0, 0.2), "Brightfield": (0.6, 0.6, 0.6),
}
SPARE_COLOURS = [(0.1, 0.9, 0.9), (1.0, 0.55, 0.0), (0.7, 0.5, 1.0), (0.6, 1.0, 0.4)]


def channel_colours(channels: list[str]) -> dict[str, tuple[float, float, float]]:
    """A display colour per channel (known Cell Painting channels by name, others from a spare list)."""
    out, spare = {}, iter(SPARE_COLOURS * 4)
    for ch in channels:
        out[ch] = CHANNEL_COLOURS.get(ch) or next(spare)
    return out


def hex_colour(rgb: tuple[float, float, float]) -> str:
    """``(r, g, b)`` in 0..1 as ``#rrggbb``."""
    return "#" + "".join(f"{int(round(255 * v)):02x}" for v in rgb)


def downsample(plane: np.ndarray, size: int) -> np.ndarray:
    """Area-average a 2-D plane to at most ``size`` pixels on its long side (float32)."""
    from skimage.transform import resize

    h, w = plane.shape
    scale = size / max(h, w)
    if scale >= 1:
        return plane.astype(np.float32)
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    return resize(plane.astype(np.float32), shape, anti_aliasing=True, preserve_range=True).astype(np.float32)


def outline_mask(labels: np.ndarray, size: int) -> np.ndarray:
    """Boundaries of a label image, max-pooled to the thumbnail grid so thin lines survive the downscale."""
    from skimage.segmentation import find_boundaries
    from skimage.transform import resize

    edges = find_boundaries(labels, mode="inner").astype(np.float32)
    h, w = labels.shape
    scale = size / max(h, w)
    if scale >= 1:
        return edges > 0
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    return resize(edges, shape, anti_aliasing=False, order=1) > 0.05


@dataclass
class SiteThumb:
    """One site, downsampled: raw float planes per channel, outlines, and image QC numbers."""

    plate: str
    well: str
    site: str
    planes: np.ndarray  # (C, h, w) float32, raw intensities
    outlines: dict[str, np.ndarray] = field(default_factory=dict)  # compartment -> bool (h, w)
    saturated: float = float("nan")  # fraction of pixels at the dtype's (or image's) ceiling, worst channel
    focus: float = float("nan")  # variance of the Laplacian / mean^2 of DNA (else the first channel), full res.
    error: str = ""
    native: tuple[int, int] = (0, 0)  # (h, w) of the stored image


def focus_score(plane: np.ndarray) -> float:
    """Normalised variance of the Laplacian (higher = sharper); scale-free so plates of any bit depth compare."""
    from scipy.ndimage import laplace

    p = plane.astype(np.float32)
    m = float(p.mean())
    return float(laplace(p).var() / (m * m)) if m > 0 else float("nan")


def saturation(plane: np.ndarray) -> float:
    """Fraction of pixels at the top of the dtype's range (integer images) or at the image maximum (float)."""
    if np.issubdtype(plane.dtype, np.integer):
        top = np.iinfo(plane.dtype).max
    else:
        top = float(plane.max())
        if top <= 0:
            return 0.0
    return float(np.mean(plane >= top))


def load_thumb(row, channels: list[str], size: int, mask_files: dict[str, Path] | None = None) -> SiteThumb:
    """Read one index row's channels and make its thumbnail planes, outlines and QC numbers.

    A site that cannot be read is returned with ``error`` set (the report marks it failed; it never vanishes).
    """
    from stratonet.core.errors import StratoNetError

    key = (str(row["Metadata_Plate"]), str(row["Metadata_Well"]), str(row["Metadata_Site"]))
    try:
        raw = _load_raw(row, channels)
    except StratoNetError as exc:
        return SiteThumb(*key, planes=np.zeros((len(channels), 1, 1), np.float32), error=str(exc).splitlines()[0])
    planes = np.stack([downsample(p, size) for p in raw])
    dna = channels.index("DNA") if "DNA" in channels else 0
    thumb = SiteThumb(*key, planes=planes, saturated=max(saturation(p) for p in raw), focus=focus_score(raw[dna]),
                      native=(int(raw[0].shape[0]), int(raw[0].shape[1])))
    thumb.outlines = mask_outlines(mask_files, raw[0].shape, size)
    return thumb


def mask_outlines(mask_files: dict[str, Path] | None, shape: tuple[int, ...], size: int) -> dict[str, np.ndarray]:
    """Compartment -> outline mask at ``size`` px of each label image that matches the site's ``shape`` (an
    unreadable or mismatched mask is left out: the site is shown without its outlines)."""
    from stratonet.core.errors import StratoNetError
    from stratonet.images.io import read_image

    out = {}
    for comp, path in (mask_files or {}).items():
        try:
            labels = read_image(path)
        except StratoNetError:
            continue
        if labels.shape == shape:
            out[comp] = outline_mask(labels, size)
    return out


def _load_raw(row, channels: list[str]) -> list[np.ndarray]:
    """The channel planes of an index row in their stored dtype (illumination correction not applied)."""
    from stratonet.core.errors import SiteError
    from stratonet.index.schema import STACK_CHANNELS, STACK_PATH, site_name, site_paths
    from stratonet.images.io import read_image

    if STACK_PATH in row.keys():
        stack = read_image(row[STACK_PATH])
        order = str(row[STACK_CHANNELS]).split("|")
        return [stack[order.index(c)] for c in channels]
    planes = []
    for ch, path in site_paths(row, channels).items():
        if path is None or (isinstance(path, float) and np.isnan(path)) or path == "":
            raise SiteError(site_name(row), f"channel '{ch}' has no image path")
        img = np.squeeze(read_image(path))
        if img.ndim != 2:
            raise SiteError(site_name(row), f"channel '{ch}' image {path} is not a 2-D plane")
        planes.append(img)
    if len({p.shape for p in planes}) > 1:
        raise SiteError(site_name(row), "channel images differ in size")
    return planes


def plate_ranges(thumbs: list[SiteThumb], low: float = 1.0, high: float = 99.7) -> np.ndarray:
    """Per-channel display range ``(C, 2)`` from percentiles over all of a plate's thumbnails."""
    ok = [t.planes for t in thumbs if not t.error]
    if not ok:
        return np.array([[0.0, 1.0]])
    c = ok[0].shape[0]
    out = np.zeros((c, 2), np.float32)
    for i in range(c):
        vals = np.concatenate([p[i].ravel() for p in ok if p.shape[0] == c])
        lo, hi = np.percentile(vals, [low, high])
        out[i] = (lo, hi if hi > lo else lo + 1)
    return out


def scale_planes(planes: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Planes scaled to 0..1 with the plate's display ranges."""
    lo = ranges[:, 0][:, None, None]
    hi = ranges[:, 1][:, None, None]
    return np.clip((planes - lo) / (hi - lo), 0, 1)


#: Channels summed at full brightness; with more, each is dimmed by MIX_CHANNELS / n so the sum does not saturate.
MIX_CHANNELS = 2.5


def composite(scaled: np.ndarray, colours: list[tuple[float, float, float]]) -> np.ndarray:
    """Additive colour composite ``(h, w, 3)`` uint8 of scaled planes (dimmed beyond :data:`MIX_CHANNELS`)."""
    gain = min(1.0, MIX_CHANNELS / max(1, len(colours)))
    rgb = gain * np.tensordot(np.asarray(colours, np.float32).T, scaled, axes=([1], [0]))  # (3, h, w)
    return (np.clip(rgb, 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8)


#: Outline colour candidates (name, RGB 0..1); :func:`outline_colours` picks the two farthest from every channel.
OUTLINE_CANDIDATES = [("white", (1.0, 1.0, 1.0)), ("magenta", (1.0, 0.2, 1.0)), ("cyan", (0.1, 0.9, 0.9)),
                      ("orange", (1.0, 0.55, 0.0)), ("yellow", (1.0, 0.9, 0.0)), ("red", (1.0, 0.15, 0.1)),
                      ("violet", (0.6, 0.3, 1.0))]


def outline_colours(channels: list[str]) -> dict[str, tuple[str, tuple[float, float, float]]]:
    """``{"Nuclei": (name, rgb), "Cells": (name, rgb)}``: outline colours that no channel of ``channels`` uses (the
    two candidates farthest, in RGB, from every channel colour), so an outline never reads as signal."""
    used = np.asarray(list(channel_colours(channels).values()) or [(0.0, 0.0, 0.0)], np.float32)

    def distance(rgb) -> float:
        return float(np.min(np.linalg.norm(used - np.asarray(rgb, np.float32), axis=1)))

    ranked = sorted(OUTLINE_CANDIDATES, key=lambda c: -distance(c[1]))
    return {"Nuclei": ranked[0], "Cells": ranked[1]}


def outline_legend(channels: list[str]) -> str:
    """``nuclei white, cells magenta`` for the plate's channels."""
    oc = outline_colours(channels)
    return f"nuclei {oc['Nuclei'][0]}, cells {oc['Cells'][0]}"


def draw_outlines(rgb: np.ndarray, outlines: dict[str, np.ndarray], channels: list[str] | None = None) -> np.ndarray:
    """Nuclei and cell outlines over a composite, in colours no channel uses (:func:`outline_colours`)."""
    out = rgb.copy()
    oc = outline_colours(channels or [])
    for comp in ("Cells", "Nuclei"):
        m = outlines.get(comp)
        if m is not None and m.shape == out.shape[:2]:
            out[m] = [int(round(255 * v)) for v in oc[comp][1]]
    return out


def encode(img: np.ndarray, fmt: str = "JPEG", quality: int = 85) -> str:
    """A ``data:`` URI of a uint8 image (grayscale or RGB)."""
    from PIL import Image

    buf = io.BytesIO()
    kw = {"quality": quality} if fmt == "JPEG" else {"optimize": True}
    Image.fromarray(img).save(buf, format=fmt, **kw)
    mime = "jpeg" if fmt == "JPEG" else "png"
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def full_site(row, channels: list[str], ranges: np.ndarray, edge: int, mask_files: dict[str, Path] | None = None,
              quality: int = 90) -> dict:
    """One site at (up to) ``edge`` px for the enlarged viewer: each channel a grayscale JPEG scaled with the plate's
    display range, and the outlines (nuclei 255, cells 128) as a PNG at the same size.

    Returns
    -------
    dict
        ``{"w", "h", "native": [h, w], "ch": [data URI per channel], "outlines": data URI (when masks exist)}`` or
        ``{"error": reason}``.
    """
    from stratonet.core.errors import StratoNetError

    try:
        raw = _load_raw(row, channels)
    except StratoNetError as exc:
        return {"error": str(exc).splitlines()[0]}
    planes = np.stack([downsample(p, edge) for p in raw])
    scaled = scale_planes(planes, ranges) if len(ranges) == len(channels) else planes / max(1e-9, planes.max())
    out = {"h": int(planes.shape[1]), "w": int(planes.shape[2]), "native": [int(raw[0].shape[0]), int(raw[0].shape[1])],
           "ch": [encode((np.clip(p, 0, 1) * 255).astype(np.uint8), quality=quality) for p in scaled]}
    lines = mask_outlines(mask_files, raw[0].shape, edge)
    if lines:
        out["outlines"] = encode(outline_layer(lines, planes.shape[1:]), fmt="PNG")
    return out


def sprite(scaled: np.ndarray) -> np.ndarray:
    """One grayscale strip for the plate viewer: every channel side by side (uint8)."""
    return np.concatenate([(scaled[i] * 255).astype(np.uint8) for i in range(scaled.shape[0])], axis=1)


def outline_layer(outlines: dict[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Nuclei outlines as 255 and cell outlines as 128 in one uint8 plane (a PNG of it costs ~1 kB at 80 px,
    a third of the same layer as JPEG)."""
    layer = np.zeros(shape, np.uint8)
    if "Cells" in outlines:
        layer[outlines["Cells"]] = 128
    if "Nuclei" in outlines:
        layer[outlines["Nuclei"]] = 255
    return layer
