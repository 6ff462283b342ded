"""Keep only the object at a crop's centre: neighbours cut by the crop edge must not shape a cell's features.

Cells are segmented once per site with the classical segmentation (nuclei on DNA, cells by seeded watershed on
the other channels); each crop then keeps the pixels of the cell under its centre and sets everything else to 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from stratonet.core.errors import SiteError


def segment_cells_for_masks(unit: np.ndarray, channels: Sequence[str], dna_channel: str = "DNA") -> np.ndarray:
    """Cell label image of a ``(C, H, W)`` [0, 1] image (nuclei from ``dna_channel``, cells on the other channels).

    The thresholds are automatic (Otsu), so any monotone intensity scaling gives the same labels.
    """
    from stratonet.extract.classical.segment import segment_site

    chans = list(channels)
    if dna_channel not in chans:
        raise ValueError(f"centre-object masks need the '{dna_channel}' channel (have {chans})")
    dna = np.asarray(unit[chans.index(dna_channel)], dtype=np.float32)
    others = [i for i, c in enumerate(chans) if c != dna_channel]
    cyto = np.mean(np.asarray(unit)[others], axis=0).astype(np.float32) if others else None
    return segment_site(dna, cyto)["Cells"]


def label_at(labels: np.ndarray, y: float, x: float, radius: int = 8) -> int:
    """The label under (y, x); if that pixel is background, the nearest label within ``radius`` pixels (else 0)."""
    h, w = labels.shape
    cy, cx = int(np.clip(round(y), 0, h - 1)), int(np.clip(round(x), 0, w - 1))
    lab = int(labels[cy, cx])
    if lab:
        return lab
    y0, y1, x0, x1 = max(0, cy - radius), min(h, cy + radius + 1), max(0, cx - radius), min(w, cx + radius + 1)
    win = labels[y0:y1, x0:x1]
    ys, xs = np.nonzero(win)
    if ys.size == 0:
        return 0
    d2 = (ys + y0 - cy) ** 2 + (xs + x0 - cx) ** 2
    k = int(np.argmin(d2))
    return int(win[ys[k], xs[k]])


def center_object_crops(crops: np.ndarray, label_crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero every pixel of ``crops`` ``(N, C, S, S)`` outside the object under each crop's centre.

    Parameters
    ----------
    crops : ndarray, shape (N, C, S, S)
    label_crops : ndarray, shape (N, S, S)
        The site's cell labels cropped at the same places.

    Returns
    -------
    (masked crops, found) where ``found[i]`` is False when no object lies at crop ``i``'s centre (that crop is
    all zeros).
    """
    out = np.array(crops, copy=True)
    found = np.zeros(len(out), dtype=bool)
    for i, lab in enumerate(label_crops):
        s = lab.shape[0]
        k = label_at(lab, (s - 1) / 2, (s - 1) / 2)
        keep = lab == k if k else np.zeros_like(lab, dtype=bool)
        found[i] = bool(k)
        out[i] *= keep[None].astype(out.dtype)
    return out, found


def require_found(found: np.ndarray, site: str) -> None:
    """A site where no crop has an object at its centre is an error, not a row of zeros."""
    if len(found) and not found.any():
        raise SiteError(site, "center-object: no segmented cell lies at any crop centre")
