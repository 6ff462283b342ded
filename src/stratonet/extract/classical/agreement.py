"""Agreement of two segmentations (ours vs CellProfiler's): counts, IoU matching, F1.

An object pair matches when its intersection over union is at least the threshold (0.5 by default); at
IoU > 0.5 a match is necessarily one-to-one, so no assignment problem needs solving.
"""

from __future__ import annotations

import numpy as np

from stratonet.extract.classical.relate import overlap_matrix


def iou_matrix(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dense IoU of every (pred label 1..P, truth label 1..T) pair, shape (P, T)."""
    inter = overlap_matrix(pred, truth).toarray().astype(float)
    area_p = inter.sum(axis=1)
    area_t = inter.sum(axis=0)
    inter = inter[1:, 1:]
    union = area_p[1:, None] + area_t[None, 1:] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def match_objects(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict:
    """Count, match and score two label images.

    Parameters
    ----------
    pred, truth : ndarray (H, W) of int
        Labels 1..N (gaps allowed; counts use the distinct non-zero labels).
    threshold : float
        Minimum IoU for a match (>= 0.5 keeps matches one-to-one).

    Returns
    -------
    dict
        ``n_pred``, ``n_truth``, ``count_ratio`` (pred/truth), ``matched``, ``precision``, ``recall``, ``f1``,
        ``mean_iou_matched``, and ``pairs`` (list of (pred label, truth label, IoU)).
    """
    from skimage.segmentation import relabel_sequential

    p, fw_p, _ = relabel_sequential(np.asarray(pred))
    t, fw_t, _ = relabel_sequential(np.asarray(truth))
    n_p, n_t = int(p.max()), int(t.max())
    iou = iou_matrix(p, t) if n_p and n_t else np.zeros((n_p, n_t))
    pairs = []
    if iou.size:
        best = iou.argmax(axis=1)
        for i, j in enumerate(best):
            if iou[i, j] >= threshold:
                pairs.append((i + 1, int(j) + 1, float(iou[i, j])))
    # Map back to the original label values.
    inv_p = {int(v): int(k) for k, v in zip(fw_p.in_values, fw_p.out_values)}
    inv_t = {int(v): int(k) for k, v in zip(fw_t.in_values, fw_t.out_values)}
    pairs = [(inv_p.get(a, a), inv_t.get(b, b), s) for a, b, s in pairs]
    tp = len(pairs)
    precision = tp / n_p if n_p else float("nan")
    recall = tp / n_t if n_t else float("nan")
    f1 = 2 * tp / (n_p + n_t) if (n_p + n_t) else float("nan")
    return {
        "n_pred": n_p,
        "n_truth": n_t,
        "count_ratio": n_p / n_t if n_t else float("nan"),
        "matched": tp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mean_iou_matched": float(np.mean([s for _, _, s in pairs])) if pairs else float("nan"),
        "pairs": pairs,
    }


def nearest_object(labels: np.ndarray, xy: np.ndarray, max_distance: float = 10.0) -> np.ndarray:
    """Label whose centroid is nearest to each (x, y) point, or 0 if none lies within ``max_distance``."""
    from scipy.spatial import cKDTree
    from scipy import ndimage as ndi

    n = int(labels.max())
    if n == 0:
        return np.zeros(len(xy), int)
    centers = np.array(ndi.center_of_mass(np.ones_like(labels), labels, np.arange(1, n + 1)))  # (y, x)
    present = ~np.isnan(centers[:, 0])
    ids = np.arange(1, n + 1)[present]
    tree = cKDTree(centers[present][:, ::-1])
    d, idx = tree.query(np.asarray(xy, float))
    return np.where(d <= max_distance, ids[idx], 0)


def compare_values(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """Median absolute relative error and Pearson r of paired values (NaN pairs dropped)."""
    a = np.asarray(ours, float)
    b = np.asarray(theirs, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) == 0:
        return {"n": 0, "median_rel_error": float("nan"), "pearson_r": float("nan")}
    denom = np.maximum(np.abs(b), 1e-12)
    rel = np.abs(a - b) / denom
    r = float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and a.std() > 0 and b.std() > 0 else float("nan")
    return {"n": int(len(a)), "median_rel_error": float(np.median(rel)), "max_rel_error": float(rel.max()),
            "pearson_r": r}


# --- agreement with CellProfiler on a real field of view --------------------------------------------------------

#: AreaShape and Intensity features compared with CellProfiler's own values.
COMPARED_SHAPE = ["Area", "Perimeter", "MajorAxisLength", "MinorAxisLength", "Eccentricity", "Solidity",
                  "FormFactor", "Extent", "EquivalentDiameter", "MaxFeretDiameter"]
COMPARED_INTENSITY = ["MeanIntensity", "IntegratedIntensity", "MedianIntensity", "MaxIntensity", "StdIntensity"]


def fov_agreement(
    image: np.ndarray,
    channels: list[str],
    cp_nuclei: np.ndarray,
    cp_cells: np.ndarray,
    cp_table,
    cp_channel_names: dict[str, str] | None = None,
    dna_channel: str = "DNA",
    cell_channels: list[str] | None = None,
) -> dict:
    """Compare our segmentation and measurements with CellProfiler's on one field of view.

    Parameters
    ----------
    image : ndarray (C, H, W) in [0, 1]
    channels : list of str
    cp_nuclei, cp_cells : label images filled from CellProfiler's outlines
    cp_table : DataFrame
        CellProfiler single-cell rows of this FOV (``Nuclei_Location_Center_X/Y``, ``*_AreaShape_*``,
        ``*_Intensity_*_<Channel>``).
    cp_channel_names : dict, optional
        Our channel -> CellProfiler's channel suffix (e.g. ``{"DNA": "CorrDNA"}``); default identical.
    cell_channels : list of str, optional
        Channels grown into cells (default: AGP and ER when present).

    Returns
    -------
    dict with ``segmentation`` (per compartment: counts, F1, ...) and ``values`` (rows: compartment,
    feature, n, median_rel_error, max_rel_error, pearson_r).
    """
    import pandas as pd

    from stratonet.extract.classical.measure import measure_objects
    from stratonet.extract.classical.segment import cytoplasm, segment_site

    names = cp_channel_names or {c: c for c in channels}
    cyto_chs = [c for c in (cell_channels or ["AGP", "ER"]) if c in channels]
    cyto = np.mean([image[channels.index(c)] for c in cyto_chs], axis=0) if cyto_chs else None
    ours = segment_site(image[channels.index(dna_channel)], cyto)
    seg = {}
    for comp, truth in (("Nuclei", cp_nuclei), ("Cells", cp_cells)):
        m = match_objects(ours[comp], truth)
        seg[comp] = {k: v for k, v in m.items() if k != "pairs"}
    # Measure on CellProfiler's own objects, then pair with its rows by location.
    cp_masks = {"Nuclei": cp_nuclei, "Cells": cp_cells, "Cytoplasm": cytoplasm(cp_cells, cp_nuclei)}
    rows = []
    for comp in ("Nuclei", "Cells"):
        xy = cp_table[[f"{comp}_Location_Center_X", f"{comp}_Location_Center_Y"]].to_numpy(float)
        lab = nearest_object(cp_masks[comp], xy)
        df = measure_objects(cp_masks[comp], image, channels, comp, ["areashape", "intensity"])
        ok = lab > 0
        feats = [(f"{comp}_AreaShape_{f}", f"{comp}_AreaShape_{f}") for f in COMPARED_SHAPE]
        feats += [(f"{comp}_Intensity_{f}_{ch}", f"{comp}_Intensity_{f}_{names[ch]}")
                  for f in COMPARED_INTENSITY for ch in channels]
        for ours_col, cp_col in feats:
            if cp_col not in cp_table.columns or ours_col not in df.columns:
                continue
            a = df[ours_col].reindex(lab[ok]).to_numpy(float)
            b = cp_table[cp_col].to_numpy(float)[ok]
            rows.append({"compartment": comp, "feature": ours_col, **compare_values(a, b)})
    return {"segmentation": seg, "values": pd.DataFrame(rows), "n_cp_cells": int(len(cp_table)),
            "n_located": int(ok.sum())}
