"""Training data: ImageFolder trees, image indexes with a label column, and preloaded in-memory image sets."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from stratonet.core.errors import InputFileError, StratoNetError
from stratonet.images.io import load_index_row, read_image
from stratonet.images.transforms import rescale_to_unit, resize_image
from stratonet.core.progress import get_logger, track

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".npy")


def to_unit_float(img: np.ndarray) -> np.ndarray:
    """An image as ``(C, H, W)`` float32 in [0, 1]: 8-bit divided by 255, anything else percentile-rescaled.

    2-D images get one channel; ``(H, W, 3|4)`` RGB(A) images are moved to channels-first (alpha dropped).
    """
    x = np.asarray(img)
    if x.ndim == 2:
        x = x[None]
    elif x.ndim == 3 and x.shape[-1] in (3, 4) and x.shape[0] not in (1, 3, 4):
        x = np.moveaxis(x[..., :3], -1, 0)
    elif x.ndim != 3:
        raise ValueError(f"expected a 2-D or 3-D image, got shape {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if x.dtype == bool:
        return x.astype(np.float32)
    return rescale_to_unit(x.astype(np.float32), 0.1, 99.9).numpy()  # as extraction prepares images


class ImageFolderDataset(Dataset):
    """One sub-folder per class, images inside (png, jpg, tif, npy); classes sorted by folder name.

    Parameters
    ----------
    root : path
    transform : callable, optional
        Applied to the ``(C, H, W)`` float tensor in [0, 1].
    classes : sequence of str, optional
        Use this class list (e.g. the training set's) instead of the folders found.
    channels : int, optional
        Repeat 1-channel images to this many channels (3 for a 3-channel stem).
    """

    def __init__(self, root: str | Path, transform: Callable | None = None, classes: Sequence[str] | None = None,
                 channels: int | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputFileError(str(self.root), "not a folder (expected one sub-folder per class)")
        found = sorted(d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not found:
            raise InputFileError(str(self.root), "no class sub-folders found")
        self.classes = list(classes) if classes is not None else found
        unknown = sorted(set(found) - set(self.classes))
        if unknown:
            raise InputFileError(str(self.root), f"class folder(s) {unknown[:5]} are not among the training classes")
        self.samples: list[tuple[Path, int]] = []
        for ci, name in enumerate(self.classes):
            d = self.root / name
            if not d.is_dir():
                continue
            for f in sorted(d.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                    self.samples.append((f, ci))
        if not self.samples:
            raise InputFileError(str(self.root), f"no images ({', '.join(IMAGE_SUFFIXES)}) in the class folders")
        self.targets = np.asarray([t for _, t in self.samples], dtype=np.int64)
        self.transform = transform
        self.channels = channels

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` as a float tensor in [0, 1], before the transform."""
        path, _ = self.samples[i]
        try:
            x = torch.from_numpy(np.ascontiguousarray(to_unit_float(read_image(path))))
        except ValueError as exc:
            raise InputFileError(str(path), str(exc)) from exc
        if self.channels and x.shape[0] != self.channels:
            if x.shape[0] == 1:
                x = x.expand(self.channels, *x.shape[1:]).contiguous()
            elif self.channels == 1:
                x = x.mean(0, keepdim=True)
            else:
                raise InputFileError(str(path), f"has {x.shape[0]} channels, the model takes {self.channels}")
        return x

    def __getitem__(self, i: int):
        x = self.load(i)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.samples[i][1])


class IndexImageDataset(Dataset):
    """Sites of an image index with integer labels; each site's chosen channels percentile-rescaled to [0, 1].

    Parameters
    ----------
    index : DataFrame
        Rows per :mod:`stratonet.index.schema`.
    channels : sequence of str
        Channels stacked as the image's channels.
    labels : ndarray of int
    transform : callable, optional
    repeat_to : int, optional
        Repeat a 1-channel image to this many channels.
    """

    def __init__(self, index: pd.DataFrame, channels: Sequence[str], labels: np.ndarray,
                 transform: Callable | None = None, repeat_to: int | None = None):
        self.index = index.reset_index(drop=True)
        self.channels = list(channels)
        self.targets = np.asarray(labels, dtype=np.int64)
        self.transform = transform
        self.repeat_to = repeat_to

    def __len__(self) -> int:
        return len(self.index)

    def load(self, i: int) -> torch.Tensor:
        img = load_index_row(self.index.iloc[i], self.channels)
        x = rescale_to_unit(img, 0.1, 99.9)  # the extraction path (stratonet.images.transforms)
        if self.repeat_to and x.shape[0] == 1 and self.repeat_to > 1:
            x = x.expand(self.repeat_to, *x.shape[1:]).contiguous()
        return x

    def __getitem__(self, i: int):
        x = self.load(i)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[i])


class TensorImageDataset(Dataset):
    """Images held in memory, ``(N, C, H, W)``, with labels and an optional per-sample transform."""

    def __init__(self, images: torch.Tensor | np.ndarray, labels: np.ndarray, transform: Callable | None = None):
        self.images = torch.as_tensor(images, dtype=torch.float32)
        self.targets = np.asarray(labels, dtype=np.int64)
        if len(self.images) != len(self.targets):
            raise ValueError(f"{len(self.images)} images but {len(self.targets)} labels")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        x = self.images[i]
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[i])


def preload_index(
    index: pd.DataFrame, channels: Sequence[str], size: int, grayscale: bool = False, on_error: str = "fail",
    error_log=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode every site once, downsample to ``size`` x ``size`` and keep it in memory.

    Intensities are NOT rescaled per image (that would erase intensity phenotypes): each channel is divided by a
    dataset-level scale (its 99.9th percentile over all sites), so a dim well stays dimmer than a bright one.
    With ``grayscale`` the scaled channels are averaged into one.

    Returns
    -------
    images : ndarray, float32, (N_ok, C, size, size)
    ok : ndarray of int
        Row positions that loaded (all of them unless ``on_error='skip'``).
    """
    from stratonet.index.schema import site_name

    imgs, ok = [], []
    for pos in track(range(len(index)), "loading sites", total=len(index)):
        row = index.iloc[pos]
        try:
            img = load_index_row(row, list(channels))
        except StratoNetError as exc:
            if on_error != "skip":
                raise
            get_logger().warning("skipped %s: %s", site_name(row), exc)
            if error_log is not None:
                error_log.add(site_name(row), "train-load", str(exc))
            continue
        imgs.append(resize_image(img, size))  # the extraction path's anti-aliased resize
        ok.append(pos)
    if not imgs:
        raise StratoNetError("no site could be loaded")
    x = np.stack(imgs).astype(np.float32)
    scale = np.percentile(x.transpose(1, 0, 2, 3).reshape(x.shape[1], -1), 99.9, axis=1).astype(np.float32)
    scale[scale <= 0] = 1.0
    x /= scale[None, :, None, None]
    if grayscale and x.shape[1] > 1:
        x = x.mean(axis=1, keepdims=True)
    return x, np.asarray(ok, dtype=np.int64)


def channel_stats(images: np.ndarray | torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation over a whole image set ``(N, C, H, W)`` (dataset-level)."""
    x = torch.as_tensor(images, dtype=torch.float32)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return mean.tolist(), std.tolist()


def estimate_stats(dataset, n: int = 256, seed: int = 0) -> tuple[list[float], list[float]]:
    """Per-channel mean / std of up to ``n`` images of a lazily loading dataset (its ``load`` method)."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(dataset), size=min(n, len(dataset)), replace=False)
    s = s2 = None
    count = 0
    for i in picks:
        x = dataset.load(int(i)).double()
        v = x.flatten(1)
        s = v.sum(1) if s is None else s + v.sum(1)
        s2 = (v * v).sum(1) if s2 is None else s2 + (v * v).sum(1)
        count += v.shape[1]
    mean = s / count
    std = (s2 / count - mean * mean).clamp_min(1e-12).sqrt()
    return mean.float().tolist(), std.float().clamp_min(1e-6).tolist()
