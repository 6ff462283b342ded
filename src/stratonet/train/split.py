"""Stratified train/validation splits, optionally keeping whole groups (plates or wells) on one side."""

from __future__ import annotations

import warnings

import numpy as np

from stratonet.core.errors import StratoNetError


def stratified_split(
    labels: np.ndarray, groups: np.ndarray | None = None, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified train / validation split.

    Parameters
    ----------
    labels : ndarray of int
    groups : ndarray, optional
        Group id per sample (e.g. ``plate/well``). All samples of a group land on the same side, so sites of one
        well never leak between training and validation.
    val_fraction : float
        About this fraction of samples (of groups, when grouped) goes to validation.
    seed : int

    Returns
    -------
    train_idx, val_idx : ndarray of int
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

    labels = np.asarray(labels)
    n = len(labels)
    if not 0 < val_fraction < 1:
        raise StratoNetError(f"val fraction must be in (0, 1), got {val_fraction}")
    if n < 2:
        raise StratoNetError(f"need at least 2 samples to split, got {n}")
    if groups is None:
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() < 2:
            # a class with one sample cannot be on both sides: put singletons in training
            rng = np.random.default_rng(seed)
            val = []
            for c in np.unique(labels):
                idx = rng.permutation(np.flatnonzero(labels == c))
                k = int(round(len(idx) * val_fraction)) if len(idx) > 1 else 0
                val.extend(idx[:max(k, 1 if len(idx) > 1 else 0)])
            val = np.sort(np.asarray(val, dtype=int))
            if not len(val):
                raise StratoNetError(f"every class has a single sample ({n} in all): none is left for validation; "
                                     "at least one class needs 2 or more")
            return np.setdiff1d(np.arange(n), val), val
        n_val = max(int(round(n * val_fraction)), len(counts))
        sss = StratifiedShuffleSplit(n_splits=1, test_size=min(n_val, n - len(counts)), random_state=seed)
        tr, va = next(sss.split(np.zeros(n), labels))
        return np.sort(tr), np.sort(va)
    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    n_splits = max(2, int(round(1 / val_fraction)))
    if n_groups < n_splits:
        raise StratoNetError(f"only {n_groups} groups; cannot make a group-aware split with {val_fraction:.0%} validation "
                             "(use --group-by none or more plates/wells)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sgkf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        try:
            tr, va = next(sgkf.split(np.zeros(n), labels, groups))
        except ValueError as exc:  # too few samples per class for this many folds
            sizes = {str(c): int((labels == c).sum()) for c in np.unique(labels)}
            raise StratoNetError(
                f"too little data for a group-aware split with {val_fraction:.0%} validation: samples per class "
                f"{sizes}, at least {n_splits} needed in some class (use --group-by none, a larger --val-fraction "
                "or more wells)") from exc
    return np.sort(tr), np.sort(va)
