"""Class imbalance: loss weights, a balanced batch sampler, and downsampling of the majority class (e.g. DMSO)."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

IMBALANCE_MODES = ("weighted-loss", "balanced-sampler", "downsample", "none")


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``n / (k * count_c)`` (1 for a balanced set); absent classes get 0."""
    counts = np.bincount(np.asarray(labels), minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
    return torch.as_tensor(w, dtype=torch.float32)


class BalancedBatchSampler(Sampler[list[int]]):
    """Batches with the same number of samples of every class (minority classes drawn with replacement).

    Each batch holds ``batch_size // k`` samples of each of the ``k`` classes present (the remainder goes to
    randomly chosen classes). An epoch has ``ceil(n / batch_size)`` batches, as an ordinary loader would.

    Parameters
    ----------
    labels : ndarray of int
    batch_size : int
    seed : int
        Seeds the draws; call :meth:`set_epoch` to vary them per epoch reproducibly.
    """

    def __init__(self, labels: np.ndarray, batch_size: int, seed: int = 0):
        self.labels = np.asarray(labels)
        self.classes = np.unique(self.labels)
        self.by_class = {c: np.flatnonzero(self.labels == c) for c in self.classes}
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError("batch size must be >= 1")
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(np.ceil(len(self.labels) / self.batch_size))

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        k = len(self.classes)
        # per-class shuffled streams, refilled when exhausted, so every sample is seen before repeats
        pools = {c: list(rng.permutation(idx)) for c, idx in self.by_class.items()}
        for _ in range(len(self)):
            per = np.full(k, self.batch_size // k)
            per[rng.choice(k, size=self.batch_size % k, replace=False)] += 1
            batch: list[int] = []
            for c, m in zip(self.classes, per):
                for _ in range(int(m)):
                    if not pools[c]:
                        pools[c] = list(rng.permutation(self.by_class[c]))
                    batch.append(int(pools[c].pop()))
            rng.shuffle(batch)
            yield batch


def downsample_majority(labels: np.ndarray, seed: int = 0, majority: int | None = None) -> np.ndarray:
    """Indices keeping every sample except a random subset of the majority class, cut to the next-largest class size.

    Parameters
    ----------
    labels : ndarray of int
    seed : int
    majority : int, optional
        The class to downsample (default: the most frequent one, e.g. DMSO).
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        return np.arange(len(labels))
    if majority is None:
        majority = int(classes[np.argmax(counts)])
    others = counts[classes != majority]
    keep_n = int(others.max())
    maj_idx = np.flatnonzero(labels == majority)
    if len(maj_idx) <= keep_n:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    kept = rng.choice(maj_idx, size=keep_n, replace=False)
    return np.sort(np.concatenate([np.flatnonzero(labels != majority), kept]))
