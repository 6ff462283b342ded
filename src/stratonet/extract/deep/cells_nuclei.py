"""Nucleus centres for cells mode: smoothing, Otsu threshold, hole filling, size filter and declumping.

The classical stage's :func:`stratonet.extract.classical.segment.segment_nuclei` draws full object outlines (h-maxima seeds,
watershed), about 1.5-2.5 s per 640 px site on one core. Cells mode needs only one point per nucleus, so this
finder keeps the same steps up to the foreground mask and the same size limits
(:class:`stratonet.extract.classical.segment.SegmentParams`, the minimum scaled to the field), then places one centre per
peak of the mask's distance transform (touching nuclei give one peak each) instead of growing a watershed: about
8x faster. On BBBC013 it
finds 3-16 % more nuclei than the classical segmentation (objects of about 9-12 px that the classical 12 px
minimum drops); on a 128 px synthetic field, where the classical minimum drops every nucleus, it finds them
(tests/extract/test_cells_mode.py).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from stratonet.extract.classical.segment import SegmentParams

#: Size limits scale with the field: an object is kept from 0.7 x the median object's diameter (at most the
#: classical 12 px minimum) up to twice the classical maximum (a clump of a few nuclei, split by the peaks below).
#: A fixed 12 px minimum suits 20x fields (BBBC013's nuclei are 16-20 px) but drops every nucleus of a small
#: synthetic field (about 8 px at 128 px), where a cells run would then fail.
PEAK_DEPTH = 2.0  # px: a distance peak lower than this (a small bump on a nucleus' edge) seeds no centre


def nucleus_centers(dna: np.ndarray, params: SegmentParams | None = None) -> np.ndarray:
    """Centres ``(N, 2)`` (y, x) of the nuclei of a DNA image scaled to [0, 1].

    Parameters
    ----------
    dna : ndarray (H, W)
        DNA channel, rescaled to [0, 1] (any monotone scaling gives the same mask: the threshold is Otsu's).
    params : SegmentParams, optional
        ``nuclei_smoothing``, ``nuclei_threshold(_factor)``, ``nuclei_min/max_diameter`` and
        ``declump_min_distance`` are used.

    Returns
    -------
    ndarray of float64, (N, 2); empty when the image is flat or holds no nucleus-sized object.
    """
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_li, threshold_otsu

    p = params or SegmentParams()
    img = np.asarray(dna, dtype=np.float32)
    if p.nuclei_smoothing:
        img = ndi.gaussian_filter(img, p.nuclei_smoothing)
    if float(img.max()) <= float(img.min()):
        return np.zeros((0, 2))
    thr = threshold_otsu(img) if p.nuclei_threshold == "otsu" else threshold_li(img)
    fg = ndi.binary_fill_holes(img > thr * p.nuclei_threshold_factor)
    labels, n = ndi.label(fg)
    if n == 0:
        return np.zeros((0, 2))
    diam = 2 * np.sqrt(np.bincount(labels.ravel()) / np.pi)
    sized = diam[1:][diam[1:] >= 4]  # the median of objects, not of single-pixel specks
    smallest = min(p.nuclei_min_diameter, 0.7 * float(np.median(sized))) if sized.size else p.nuclei_min_diameter
    ok = (diam >= smallest) & (diam <= 2 * p.nuclei_max_diameter)
    ok[0] = False
    fg = ok[labels]
    if not fg.any():
        return np.zeros((0, 2))
    dist = ndi.gaussian_filter(ndi.distance_transform_edt(fg), 1.0)
    # one peak per nucleus: peaks at least declump_min_distance apart and at least PEAK_DEPTH px from the edge
    peaks = peak_local_max(dist, min_distance=max(1, int(p.declump_min_distance)), labels=fg.astype(np.int32),
                           threshold_abs=PEAK_DEPTH, exclude_border=False)
    return peaks.astype(np.float64).reshape(-1, 2)


def sample_centers(centers: np.ndarray, cap: int | None, seed: int, key: tuple) -> np.ndarray:
    """At most ``cap`` centres of a site, drawn without replacement (order kept), reproducibly per site and seed."""
    if cap is None or len(centers) <= cap:
        return centers
    import zlib

    rng = np.random.default_rng([int(seed), zlib.crc32("/".join(map(str, key)).encode())])
    keep = np.sort(rng.choice(len(centers), size=int(cap), replace=False))
    return centers[keep]
