"""Tiny synthetic image sets for the training tests (written to tmp folders; a few KB each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import pytest
import pandas as pd
import tifffile
from PIL import Image


def _phenotype(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A uint16 image: dim noisy background plus a class-specific pattern."""
    img = rng.normal(200, 30, (size, size))
    yy, xx = np.mgrid[:size, :size]
    if kind == "DMSO":
        for _ in range(4):
            cy, cx = rng.integers(8, size - 8, 2)
            img += 800 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 20)
    elif kind == "bright":
        img += 2500
    elif kind == "stripes":
        img += 1500 * (np.sin(yy / 2.0) > 0)
    elif kind == "ring":
        r = np.hypot(yy - size / 2, xx - size / 2)
        img += 2000 * (np.abs(r - size / 4) < 3)
    return np.clip(img, 0, 65535).astype(np.uint16)


def make_index(root: Path, wells: dict[str, int], sites: int = 2, size: int = 48, seed: int = 0,
               plate: str = "P1") -> Path:
    """An index (parquet) of TIFF sites, channels DNA and AGP; ``wells`` maps a class to its number of wells.

    The class is in ``Metadata_pert_iname`` (``DMSO`` is the control); classes are 'DMSO', 'bright', 'stripes', 'ring'.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows, w = [], 0
    for kind, n in wells.items():
        for _ in range(n):
            well = f"{chr(ord('A') + w // 12)}{w % 12 + 1:02d}"
            w += 1
            for s in range(1, sites + 1):
                row = {"Metadata_Plate": plate, "Metadata_Well": well, "Metadata_Site": s,
                       "Metadata_pert_iname": kind, "Metadata_control_type": "negcon" if kind == "DMSO" else "trt"}
                for ch in ("DNA", "AGP"):
                    p = root / f"{plate}_{well}_s{s}_{ch}.tif"
                    tifffile.imwrite(p, _phenotype(kind, rng, size))
                    row[f"Path_{ch}"] = str(p)
                rows.append(row)
    path = root / "index.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


SHAPES = ("square", "disk", "hbar", "vbar", "cross", "ring", "diag", "checker", "dots", "triangle")


def _shape(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size].astype(float)
    c = size / 2 + rng.uniform(-size / 10, size / 10, 2)
    s = size * rng.uniform(0.22, 0.32)
    dy, dx = yy - c[0], xx - c[1]
    m = {
        "square": (np.abs(dy) < s) & (np.abs(dx) < s),
        "disk": np.hypot(dy, dx) < s,
        "hbar": (np.abs(dy) < s / 4) & (np.abs(dx) < s * 1.3),
        "vbar": (np.abs(dx) < s / 4) & (np.abs(dy) < s * 1.3),
        "cross": ((np.abs(dy) < s / 4) | (np.abs(dx) < s / 4)) & (np.abs(dy) < s) & (np.abs(dx) < s),
        "ring": np.abs(np.hypot(dy, dx) - s) < s / 4,
        "diag": (np.abs(dy - dx) < s / 3) & (np.abs(dy) < s),
        "checker": ((yy // 6 + xx // 6) % 2 == 0),
        "dots": (np.sin(yy / 2) > 0.7) & (np.sin(xx / 2) > 0.7),
        "triangle": (dy < s) & (dy > -s) & (np.abs(dx) < (dy + s) / 2),
    }[kind]
    img = m * rng.uniform(150, 255) + rng.normal(0, 20, (size, size)) + 30
    return np.clip(img, 0, 255).astype(np.uint8)


def make_image_folder(root: Path, n_per_class: int, size: int = 64, classes=SHAPES, seed: int = 0) -> Path:
    """An ImageFolder tree of 8-bit grayscale PNG shapes, one folder per class."""
    rng = np.random.default_rng(seed)
    for kind in classes:
        d = root / kind
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            Image.fromarray(_shape(kind, rng, size)).save(d / f"{i:04d}.png")
    return root


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models train faster on one thread on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
