"""Train/test splits (optionally group-aware) and the class-balanced training sample of the thesis protocol."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from stratonet.core.errors import StratoNetError


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
    n_test = int(np.ceil(test_size * len(y)))
    if min(n_test, len(y) - n_test) < len(counts):
        need = float(np.ceil(100 * len(counts) / len(y))) / 100
        raise StratoNetError(f"a stratified split of {len(y)} rows with test size {test_size:g} puts {n_test} rows in "
                             f"the test set and {len(y) - n_test} in training, fewer than the {len(counts)} classes; "
                             f"use --test-size between {need:g} and {1 - need:g}, or more rows")
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    return next(splitter.split(idx, y))


def check_group_folds(groups: Sequence | None, k: int, column: str | None = None) -> None:
    """Refuse, before any fitting, group-aware k-fold CV with fewer than ``k`` groups; offer leave-one-group-out
    (``k`` = the number of groups)."""
    if groups is None or not k or k < 2:
        return
    n_groups = len(np.unique(np.asarray(groups)))
    if n_groups < k:
        col = f" of {column}" if column else ""
        raise StratoNetError(f"{k}-fold group-aware CV needs at least {k} groups, found {n_groups}{col}; use "
                             f"--cv {n_groups} (leave one group out) or --cv 0 (held-out split only)")


def oversampled(fit_idx: np.ndarray) -> int:
    """How many rows of a balanced sample are repeats (drawn with replacement for classes that are too small)."""
    return int(len(fit_idx) - len(np.unique(fit_idx)))


def kfold_indices(
    y: Sequence, k: int = 10, groups: Sequence | None = None, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """k folds, stratified by class, or with ``groups`` stratified and group-aware (StratifiedGroupKFold)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y)
    idx = np.arange(len(y))
    if groups is not None:
        check_group_folds(groups, k)
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
