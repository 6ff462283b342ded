"""Agreement of two segmentations (ours vs CellProfiler's): counts, IoU matching, F1.

An object pair matches when its intersection over union is at least the threshold (0.5 by default); at
IoU > 0.5 a match is necessarily one-to-one, so no assignment problem needs solving.
"""

from __future__ import annotations

import numpy as np

from stratonet.classical.relate import overlap_matrix


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
