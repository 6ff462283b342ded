"""Segmentation without a GUI: nuclei from DNA, cells by seeded watershed from the nuclei, cytoplasm = cell - nucleus.

Images are expected scaled to [0, 1] (uint16 / 65535, as CellProfiler does). The steps follow CellProfiler's
IdentifyPrimaryObjects / IdentifySecondaryObjects / IdentifyTertiaryObjects with scikit-image building blocks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage as ndi


@dataclass
class SegmentParams:
    """Segmentation settings (pixel units at the image's native resolution).

    Attributes
    ----------
    nuclei_smoothing : float
        Gaussian sigma applied to DNA before thresholding.
    nuclei_threshold : {"otsu", "li"}
        Otsu or minimum cross-entropy (Li) threshold, computed on the smoothed DNA image.
    nuclei_threshold_factor : float
        Multiplies the automatic threshold (CellProfiler's "threshold correction factor").
    nuclei_min_diameter, nuclei_max_diameter : float
        Objects whose equivalent diameter lies outside this range are removed.
    declump_min_distance : int
        Minimum distance between seeds of the distance-transform watershed (pixels).
    declump_h : float
        Height (pixels of distance) a distance peak must rise above its surroundings to seed an object;
        suppresses over-splitting of elongated nuclei.
    cell_smoothing : float
        Gaussian sigma applied to the cytoplasmic image.
    cell_threshold : {"otsu", "li"}
        Threshold of the cytoplasmic image, computed on log intensities (which keep the dim cell edges).
    cell_threshold_factor : float
        Multiplies the cell threshold.
    cell_max_distance : float
        Cells grow at most this far (pixels) from their nucleus; 0 disables the limit.
    """

    nuclei_smoothing: float = 1.0
    nuclei_threshold: str = "otsu"
    nuclei_threshold_factor: float = 1.0
    nuclei_min_diameter: float = 12.0
    nuclei_max_diameter: float = 90.0
    declump_min_distance: int = 7
    declump_h: float = 1.5
    cell_smoothing: float = 1.5
    cell_threshold: str = "otsu"
    cell_threshold_factor: float = 1.0
    cell_max_distance: float = 120.0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _threshold(img: np.ndarray, method: str) -> float:
    from skimage.filters import threshold_li, threshold_otsu

    if method == "otsu":
        return float(threshold_otsu(img))
    if method == "li":
        return float(threshold_li(img))
    raise ValueError(f"unknown threshold method '{method}' (use otsu or li)")


def segment_nuclei(dna: np.ndarray, params: SegmentParams | None = None) -> np.ndarray:
    """Label nuclei in a DNA image.

    Smoothing -> global threshold -> hole filling -> distance-transform watershed -> size filter.

    Parameters
    ----------
    dna : ndarray (H, W), float in [0, 1]
    params : SegmentParams, optional

    Returns
    -------
    ndarray of int32, (H, W): labels 1..N, background 0.
    """
    from skimage.morphology import h_maxima, remove_small_objects
    from skimage.segmentation import relabel_sequential, watershed

    p = params or SegmentParams()
    img = ndi.gaussian_filter(np.asarray(dna, dtype=np.float32), p.nuclei_smoothing) if p.nuclei_smoothing else dna
    if float(img.max()) <= float(img.min()):
        return np.zeros(img.shape, np.int32)
    thr = _threshold(img, p.nuclei_threshold) * p.nuclei_threshold_factor
    fg = ndi.binary_fill_holes(img > thr)
    min_area = np.pi * (p.nuclei_min_diameter / 2) ** 2
    fg = remove_small_objects(fg, max_size=max(1, int(min_area * 0.5)))
    # Declumping: seeds at the peaks of the smoothed distance transform.
    dist = ndi.gaussian_filter(ndi.distance_transform_edt(fg), 1.0)
    peaks = h_maxima(dist, p.declump_h)
    markers, _ = ndi.label(peaks)
    # Merge seeds closer than declump_min_distance (plateaus or twin peaks of one nucleus).
    if p.declump_min_distance > 1 and markers.max() > 0:
        grown = ndi.binary_dilation(peaks, iterations=max(1, p.declump_min_distance // 2))
        merged, _ = ndi.label(grown)
        markers = np.where(peaks, merged, 0)
    labels = watershed(-dist, markers, mask=fg)
    # Keep components without a seed (tiny or flat ones are removed by the size filter below).
    orphan, n_orphan = ndi.label(fg & (labels == 0))
    if n_orphan:
        labels = np.where(orphan > 0, orphan + labels.max(), labels)
    labels = _size_filter(labels, p.nuclei_min_diameter, p.nuclei_max_diameter)
    return relabel_sequential(labels)[0].astype(np.int32)


def _size_filter(labels: np.ndarray, min_diameter: float, max_diameter: float) -> np.ndarray:
    areas = np.bincount(labels.ravel())
    diam = 2 * np.sqrt(areas / np.pi)
    bad = (diam < min_diameter) | (diam > max_diameter)
    bad[0] = False
    out = labels.copy()
    out[bad[labels]] = 0
    return out


def segment_cells(
    cyto: np.ndarray,
    nuclei: np.ndarray,
    params: SegmentParams | None = None,
) -> np.ndarray:
    """Grow cells from nuclei on a cytoplasmic image (seeded watershed, CellProfiler's Propagation in spirit).

    Each cell keeps the number of its nucleus and always contains it, so cells and nuclei are 1:1.

    Parameters
    ----------
    cyto : ndarray (H, W), float in [0, 1]
        Cytoplasmic stain (e.g. the mean of AGP and ER).
    nuclei : ndarray (H, W) of int
        Nuclei labels (seeds).
    params : SegmentParams, optional

    Returns
    -------
    ndarray of int32, (H, W)
    """
    from skimage.segmentation import watershed

    p = params or SegmentParams()
    img = np.asarray(cyto, dtype=np.float32)
    if p.cell_smoothing:
        img = ndi.gaussian_filter(img, p.cell_smoothing)
    if nuclei.max() == 0:
        return np.zeros(nuclei.shape, np.int32)
    logimg = np.log(np.maximum(img, 1e-6))
    fg = logimg > _threshold(logimg, p.cell_threshold) + np.log(max(p.cell_threshold_factor, 1e-6))
    fg = ndi.binary_fill_holes(fg | (nuclei > 0))
    if p.cell_max_distance and p.cell_max_distance > 0:
        fg &= ndi.distance_transform_edt(nuclei == 0) <= p.cell_max_distance
    # Cells flood from their nucleus downhill in intensity; touching cells meet in the dim valleys between
    # them. (Flooding the gradient image instead lets one cell leak into its neighbours' bodies: on the JUMP
    # FOV it gave cell F1 0.05 against CellProfiler's outlines, the inverted intensity 0.88-0.92.)
    cells = watershed(-img, nuclei, mask=fg)
    cells[nuclei > 0] = nuclei[nuclei > 0]
    # A cell is the connected piece that holds its nucleus (drop fragments cut off by other cells).
    return _keep_seeded_component(cells, nuclei).astype(np.int32)


def _keep_seeded_component(cells: np.ndarray, nuclei: np.ndarray) -> np.ndarray:
    pieces, n = ndi.label(cells > 0)
    if n == 0:
        return cells
    # A piece belongs to cell k if it overlaps nucleus k; components of the same label not touching it are dropped.
    pair = pieces.astype(np.int64) * (int(cells.max()) + 1) + cells
    seeded = np.unique(pair[nuclei > 0])
    keep = np.isin(pair, seeded)
    return np.where(keep, cells, 0)


def cytoplasm(cells: np.ndarray, nuclei: np.ndarray) -> np.ndarray:
    """Cell minus nucleus (CellProfiler's IdentifyTertiaryObjects); keeps the cell's number."""
    out = cells.copy()
    out[nuclei > 0] = 0
    return out


def touches_border(labels: np.ndarray) -> np.ndarray:
    """Boolean per label 1..N: True where the object touches the image border."""
    n = int(labels.max())
    flags = np.zeros(n + 1, bool)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    flags[np.unique(edge)] = True
    return flags[1:]


def segment_site(
    dna: np.ndarray,
    cyto: np.ndarray | None,
    params: SegmentParams | None = None,
) -> dict[str, np.ndarray]:
    """Nuclei, cells and cytoplasm label images of one site.

    Without a cytoplasmic image the cells are the nuclei dilated by ``cell_max_distance / 4`` pixels
    (CellProfiler's "Distance - N" method), so every downstream step still works.
    """
    from skimage.segmentation import expand_labels

    p = params or SegmentParams()
    nuclei = segment_nuclei(dna, p)
    if cyto is None:
        cells = expand_labels(nuclei, distance=max(1, int(p.cell_max_distance / 4)))
    else:
        cells = segment_cells(cyto, nuclei, p)
    return {"Nuclei": nuclei, "Cells": cells, "Cytoplasm": cytoplasm(cells, nuclei)}
