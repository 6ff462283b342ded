"""External label images: CellProfiler outlines (PNG/TIFF) filled to labels, label TIFFs, Cellpose ``_masks.tif``.

Also the optional Cellpose path, used only when Cellpose and local model weights are present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from stratonet.errors import InputFileError, NotAvailableError


def outlines_to_labels(
    outlines: np.ndarray,
    max_area: int | None = None,
    min_area: int = 10,
    seeds: np.ndarray | None = None,
) -> np.ndarray:
    """Fill a CellProfiler outline image into a label image.

    CellProfiler draws each object's inner boundary, so touching objects are separated by outline pixels.
    The regions enclosed by outlines (4-connected) become objects; outline pixels are then given to the
    nearest object.

    Parameters
    ----------
    outlines : ndarray (H, W) or (H, W, 3)
        Non-zero where an outline is drawn (any colour).
    max_area : int, optional
        Regions larger than this are background (default: a tenth of the image). The largest region is
        always background.
    min_area : int
        Regions smaller than this are dropped (specks between crossing outlines).
    seeds : ndarray (H, W) of int, optional
        If given (e.g. nuclei labels when filling cell outlines), only regions that overlap a seed are kept,
        which removes background pockets enclosed by neighbouring cells.

    Returns
    -------
    ndarray of int32
    """
    from skimage.segmentation import expand_labels, relabel_sequential

    line = np.asarray(outlines)
    if line.ndim == 3:
        line = line.max(axis=-1)
    line = line > 0
    regions, n = ndi.label(~line)  # 4-connectivity: outlines of one pixel separate regions
    if n == 0:
        return np.zeros(line.shape, np.int32)
    areas = np.bincount(regions.ravel())
    areas[0] = 0
    limit = max_area if max_area is not None else line.size // 10
    background = (areas > limit) | (areas < min_area)
    background[int(np.argmax(areas))] = True
    if seeds is not None:
        hit = np.zeros(n + 1, bool)
        hit[np.unique(regions[seeds > 0])] = True
        background |= ~hit
    background[0] = True
    regions[background[regions]] = 0
    # Outline pixels (and only those) join the nearest object: the outline is the object's inner boundary.
    grown = expand_labels(regions, distance=2)
    regions = np.where(line, grown, regions)
    return relabel_sequential(regions)[0].astype(np.int32)


def read_labels(path: str | Path, seeds: np.ndarray | None = None) -> np.ndarray:
    """Read a label image: an integer label TIFF/PNG/NPY (e.g. Cellpose ``_masks.tif``) or an outline image.

    A file with only two values (or an RGB image) is taken as outlines and filled with
    :func:`outlines_to_labels`; anything else is used as labels as is.
    """
    from stratonet.io import read_image

    img = read_image(path)
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        return outlines_to_labels(img[..., :3], seeds=seeds)
    if img.ndim != 2:
        raise InputFileError(str(path), f"label image has shape {img.shape}, expected (H, W)")
    if not np.issubdtype(img.dtype, np.integer) and not np.issubdtype(img.dtype, np.bool_):
        if not np.all(np.equal(np.mod(img, 1), 0)):
            raise InputFileError(str(path), "label image is not integer-valued")
        img = img.astype(np.int64)
    if img.min() < 0:
        raise InputFileError(str(path), "label image has negative values")
    if len(np.unique(img)) <= 2:
        return outlines_to_labels(img, seeds=seeds)
    return img.astype(np.int32)


def cellpose_available() -> tuple[bool, str]:
    """Whether Cellpose is importable and has local model weights, and why not if it has not."""
    try:
        import cellpose  # noqa: F401
        from cellpose import models
    except Exception:
        return False, "cellpose is not installed"
    model_dir = Path(getattr(models, "MODEL_DIR", Path.home() / ".cellpose" / "models"))
    if not model_dir.exists() or not any(model_dir.iterdir()):
        return False, f"no Cellpose weights in {model_dir} (this tool never downloads them)"
    return True, ""


def segment_cellpose(dna: np.ndarray, cyto: np.ndarray | None, diameter: float | None = None) -> dict[str, np.ndarray]:
    """Nuclei and cells with Cellpose's local 'nuclei' and 'cyto' models.

    Raises
    ------
    NotAvailableError
        If Cellpose or its weights are absent.
    """
    ok, why = cellpose_available()
    if not ok:
        raise NotAvailableError(f"--segmentation cellpose: {why}")
    from cellpose import models  # pragma: no cover - not installed here

    from stratonet.classical.segment import cytoplasm

    nuc_model = models.Cellpose(model_type="nuclei")  # pragma: no cover
    nuclei = nuc_model.eval(dna, diameter=diameter, channels=[0, 0])[0].astype(np.int32)  # pragma: no cover
    if cyto is None:  # pragma: no cover
        from skimage.segmentation import expand_labels

        cells = expand_labels(nuclei, 30)
    else:  # pragma: no cover
        cyto_model = models.Cellpose(model_type="cyto")
        cells_raw = cyto_model.eval(np.stack([cyto, dna]), diameter=diameter, channels=[1, 2])[0]
        from stratonet.classical.agreement import relabel_to_parents

        cells = relabel_to_parents(cells_raw.astype(np.int32), nuclei)
    return {"Nuclei": nuclei, "Cells": cells, "Cytoplasm": cytoplasm(cells, nuclei)}  # pragma: no cover
