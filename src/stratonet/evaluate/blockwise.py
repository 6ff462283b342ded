"""Retrieval at screen scale: average precision and 1-NN in blocks of query rows, in bounded memory.

copairs enumerates every (query, candidate) pair as index arrays before it ranks them; for an activity mAP on
50,000 wells with thousands of controls that is hundreds of millions of pairs and tens of GB. Here the
similarities of a block of queries to all profiles are computed at once (``block_rows x n`` float32), masked into
positives and negatives, and reduced to one AP per query, so memory is ``O(block_rows x n)`` whatever ``n`` is.

The AP follows copairs' definition exactly: candidates are ranked by decreasing similarity, a positive tied with
a negative ranks first, and ``AP = mean_k k / rank_k`` over the positives ``k = 1..P``. The p-values and the BH
correction are left to copairs' own ``mean_average_precision`` on the resulting AP table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratonet.core.errors import ConfigError

METRICS = ("cosine", "correlation", "euclidean")


def prepare(X: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows transformed so that a block's similarities are one matrix product (and, for Euclidean, squared norms)."""
    if metric not in METRICS:
        raise ConfigError(f"unknown similarity '{metric}' (use {', '.join(METRICS)})")
    X = np.asarray(X, dtype=np.float32)
    if metric == "euclidean":
        return np.ascontiguousarray(X), np.einsum("ij,ij->i", X, X)
    if metric == "correlation":
        X = X - X.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(X / norms), None


def block_similarity(Xp: np.ndarray, sq: np.ndarray | None, rows: slice) -> np.ndarray:
    """Similarities of the rows ``rows`` to every row (float32), as :func:`prepare` set them up."""
    if sq is None:
        return Xp[rows] @ Xp.T
    d2 = np.maximum(sq[rows, None] + sq[None, :] - 2 * (Xp[rows] @ Xp.T), 0)
    return (1.0 / (1.0 + np.sqrt(d2))).astype(np.float32)


def average_precision_blockwise(
    X: np.ndarray,
    pos_code: np.ndarray,
    pos_diff: np.ndarray,
    neg_code: np.ndarray,
    neg_candidate: np.ndarray,
    metric: str = "cosine",
    block_rows: int = 512,
) -> pd.DataFrame:
    """Average precision of every profile against its positives and negatives, block by block.

    Parameters
    ----------
    X : array (n, d)
        Profiles.
    pos_code : int array (n,)
        ``i`` and ``j`` are positives when their codes are equal and not negative (``-1`` never pairs) ...
    pos_diff : int array (n,)
        ... and their ``pos_diff`` codes differ (pass ``arange(n)`` for "any other profile").
    neg_code : int array (n,)
        ``j`` is a negative of ``i`` when ``neg_code`` differs ...
    neg_candidate : bool array (n,)
        ... and ``j`` may serve as a negative at all (e.g. only negative controls).
    metric : {"cosine", "correlation", "euclidean"}
    block_rows : int
        Query rows per block; memory is about ``3 * block_rows * n`` bytes beyond ``X``.

    Returns
    -------
    DataFrame
        One row per profile: ``average_precision`` (NaN without a positive or a negative), ``n_pos_pairs``,
        ``n_total_pairs`` and ``normalized_average_precision``, as copairs' ``average_precision`` names them.
        A profile with positives but no negative gets AP 1, as in copairs.
    """
    from copairs.map.normalization import normalize_ap

    n = len(X)
    Xp, sq = prepare(X, metric)
    pos_code, pos_diff, neg_code = (np.asarray(a) for a in (pos_code, pos_diff, neg_code))
    neg_candidate = np.asarray(neg_candidate, dtype=bool)
    ap = np.full(n, np.nan)
    n_pos = np.zeros(n, dtype=np.int64)
    n_total = np.zeros(n, dtype=np.int64)
    for start in range(0, n, block_rows):
        rows = slice(start, min(n, start + block_rows))
        sim = block_similarity(Xp, sq, rows)
        pos = (pos_code[rows, None] == pos_code[None, :]) & (pos_code[rows, None] >= 0)
        pos &= pos_diff[rows, None] != pos_diff[None, :]
        neg = (neg_code[rows, None] != neg_code[None, :]) & neg_candidate[None, :]
        for r in range(sim.shape[0]):
            i = start + r
            ps = sim[r, pos[r]]
            ns = sim[r, neg[r]]
            n_pos[i], n_total[i] = len(ps), len(ps) + len(ns)
            if len(ps):
                ap[i] = _ap_one(ps, ns)
    out = pd.DataFrame({"average_precision": ap, "n_pos_pairs": n_pos, "n_total_pairs": n_total})
    ok = n_pos > 0
    norm = np.full(n, np.nan)
    if ok.any():
        norm[ok] = normalize_ap(ap[ok], n_pos[ok], n_total[ok] - n_pos[ok])
    out["normalized_average_precision"] = norm
    return out


def _ap_one(pos_sims: np.ndarray, neg_sims: np.ndarray) -> float:
    """AP of one ranked list: positives ranked before negatives of equal similarity."""
    p = np.sort(pos_sims)[::-1]
    # negatives strictly more similar than each positive (ties go to the positive)
    if len(p) <= 32:  # few replicates: P x N comparisons beat sorting N
        above = (neg_sims[None, :] > p[:, None]).sum(axis=1)
    else:
        neg_sorted = np.sort(neg_sims)
        above = len(neg_sorted) - np.searchsorted(neg_sorted, p, side="right")
    k = np.arange(1, len(p) + 1)
    return float(np.mean(k / (k + above)))


def nearest_allowed_blockwise(
    X: np.ndarray,
    allowed_fn,
    labels: np.ndarray,
    metric: str = "cosine",
    block_rows: int = 512,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index and similarity of each row's most similar allowed row, block by block.

    Parameters
    ----------
    X : array (n, d)
    allowed_fn : callable
        ``allowed_fn(rows: slice) -> bool array (len(rows), n)``: which candidates each query row may match.
    labels : array (n,)
        Class of each row, to tell whether a row has any allowed candidate of its own class.
    metric : {"cosine", "correlation", "euclidean"}
    block_rows : int

    Returns
    -------
    neighbor : int array (n,)
        ``-1`` where a row has no allowed candidate.
    similarity : float array (n,)
        NaN where ``neighbor`` is ``-1``.
    has_same_class : bool array (n,)
        Whether some allowed candidate shares the row's class (the query is evaluable).
    """
    n = len(X)
    Xp, sq = prepare(X, metric)
    neighbor = np.full(n, -1, dtype=np.int64)
    similarity = np.full(n, np.nan)
    has_same_class = np.zeros(n, dtype=bool)
    labels = np.asarray(labels)
    for start in range(0, n, block_rows):
        rows = slice(start, min(n, start + block_rows))
        allowed = allowed_fn(rows)
        has_same_class[rows] = (allowed & (labels[rows, None] == labels[None, :])).any(axis=1)
        s = np.where(allowed, block_similarity(Xp, sq, rows), -np.inf)
        nn = s.argmax(axis=1)
        best = s[np.arange(len(s)), nn]
        has = np.isfinite(best)
        neighbor[rows] = np.where(has, nn, -1)
        similarity[rows] = np.where(has, best, np.nan)
    return neighbor, similarity, has_same_class
