"""Parent-child relations between label images (CellProfiler's RelateObjects)."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def overlap_matrix(a: np.ndarray, b: np.ndarray) -> sparse.csr_matrix:
    """Pixel counts of every (label in ``a``, label in ``b``) pair, background included at index 0."""
    a = np.asarray(a).ravel().astype(np.int64)
    b = np.asarray(b).ravel().astype(np.int64)
    shape = (int(a.max(initial=0)) + 1, int(b.max(initial=0)) + 1)
    return sparse.coo_matrix((np.ones(a.size, np.int64), (a, b)), shape=shape).tocsr()


def parent_of(children: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """For each child label 1..N, the parent label it overlaps most (0 if none).

    Returns
    -------
    ndarray of int, length ``children.max()``
    """
    m = overlap_matrix(children, parents).toarray()
    if m.shape[0] <= 1:
        return np.zeros(0, int)
    m = m[1:, :].copy()
    m[:, 0] = 0
    out = m.argmax(axis=1)
    out[m.max(axis=1) == 0] = 0
    return out.astype(int)


def children_count(parents: np.ndarray, parent_of_children: np.ndarray) -> np.ndarray:
    """Number of children of each parent label 1..M."""
    n = int(np.asarray(parents).max(initial=0))
    return np.bincount(parent_of_children[parent_of_children > 0], minlength=n + 1)[1:]
