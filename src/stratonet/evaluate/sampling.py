"""Train/test splits (optionally group-aware) and the class-balanced training sample of the thesis protocol."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from stratonet.errors import StratoNetError


def train_test_split_indices(
    y: Sequence, test_size: float = 0.2, groups: Sequence | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into train and test, stratified by class or, with ``groups``, keeping groups whole.

    Parameters
    ----------
    y : sequence of labels
    test_size : float
        Fraction of rows (or of groups) in the test set.
    groups : sequence, optional
        Group of each row (e.g. plate or compound); no group lands on both sides.
    seed : int

    Returns
    -------
    train_idx, test_idx : ndarray of int
    """
    from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit

    y = np.asarray(y)
    idx = np.arange(len(y))
    if not 0 < test_size < 1:
        raise StratoNetError(f"test size must lie between 0 and 1, got {test_size}")
    if groups is not None:
        groups = np.asarray(groups)
        if len(np.unique(groups)) < 2:
            raise StratoNetError("a group-aware split needs at least two groups")
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        return next(splitter.split(idx, y, groups))
    _, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        raise StratoNetError("every class needs at least 2 samples for a stratified split")
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    return next(splitter.split(idx, y))


def kfold_indices(
    y: Sequence, k: int = 10, groups: Sequence | None = None, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """k folds, stratified by class, or with ``groups`` stratified and group-aware (StratifiedGroupKFold)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y)
    idx = np.arange(len(y))
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < k:
            raise StratoNetError(f"{k}-fold group-aware CV needs at least {k} groups, found {n_groups}")
        yield from StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(idx, y, np.asarray(groups))
        return
    yield from StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(idx, y)


def balanced_sample(
    y: Sequence, candidates: Sequence[int], n_total: int = 3000, seed: int = 0
) -> np.ndarray:
    """Class-balanced sample of row indices drawn only from ``candidates``.

    Every class gets ``n_total // n_classes`` rows: drawn without replacement when the class has at least that many
    candidate rows, with replacement (all rows first, then random repeats) only when it is too small.

    Parameters
    ----------
    y : sequence of labels (for all rows)
    candidates : indices the sample may use (the training split)
    n_total : int
        Size of the balanced set.
    seed : int

    Returns
    -------
    ndarray of int
        Indices into ``y`` (repeats possible for small classes), shuffled.
    """
    y = np.asarray(y)
    candidates = np.asarray(candidates)
    rng = np.random.default_rng(seed)
    classes = np.unique(y[candidates])
    if len(classes) == 0:
        raise StratoNetError("no training rows to sample from")
    per_class = max(1, n_total // len(classes))
    picks = []
    for cls in classes:
        pool = candidates[y[candidates] == cls]
        if len(pool) >= per_class:
            picks.append(rng.choice(pool, size=per_class, replace=False))
        else:
            extra = rng.choice(pool, size=per_class - len(pool), replace=True)
            picks.append(np.concatenate([pool, extra]))
    out = np.concatenate(picks)
    rng.shuffle(out)
    return out


def balanced_subset(y: Sequence, indices: Sequence[int], seed: int = 0) -> np.ndarray:
    """Down-sample ``indices`` (without replacement) to the size of its smallest class: the balanced test set."""
    y = np.asarray(y)
    indices = np.asarray(indices)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y[indices], return_counts=True)
    n = int(counts.min())
    return np.concatenate([rng.choice(indices[y[indices] == c], size=n, replace=False) for c in classes])
