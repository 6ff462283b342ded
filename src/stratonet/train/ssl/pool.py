"""The training images of ``train ssl``: every index site's channels as [0, 1] planes, and the points to crop at.

No label column is read: only the site keys (for the model card) and the image paths. Each channel image is
rescaled on its own between its 0.1 and 99.9 percentiles (as ``extract deep --scaling image``); the views' gain
and offset jitter cover the plate-level differences that ``--scaling plate`` keeps at extraction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.index.schema import select_channels, site_name, validate_index

CROP_SOURCES = ("cells", "tiles")


@dataclass
class ImagePool:
    """Planes ``planes[site][channel]`` (float16 ``(H, W)`` tensors in [0, 1]) and nucleus centres per site."""

    channels: list[str]
    planes: list[list[torch.Tensor]]
    centers: list[np.ndarray]
    sites: list[tuple[str, str, str]]
    source: str
    skipped: list[str] = field(default_factory=list)

    @property
    def n_cells(self) -> int:
        return int(sum(len(c) for c in self.centers))

    def draw(self, g: torch.Generator) -> tuple[torch.Tensor, float, float]:
        """One (plane, y, x): a uniformly drawn cell and channel (``cells``), or a uniform point of a uniform site
        and channel (``tiles``)."""
        ch = int(torch.randint(0, len(self.channels), (), generator=g))
        if self.source == "cells":
            k = int(torch.randint(0, self._cum[-1], (), generator=g))
            s = int(np.searchsorted(self._cum, k, side="right"))
            y, x = self.centers[s][k - (self._cum[s - 1] if s else 0)]
            return self.planes[s][ch], float(y), float(x)
        s = int(torch.randint(0, len(self.planes), (), generator=g))
        h, w = self.planes[s][ch].shape
        return self.planes[s][ch], float(torch.rand((), generator=g)) * h, float(torch.rand((), generator=g)) * w

    def __post_init__(self) -> None:
        self._cum = np.cumsum([len(c) for c in self.centers])

    def describe(self) -> dict:
        """The training data for the model card: plates, sites, cells, channels, crop source."""
        plates = sorted({s[0] for s in self.sites})
        return {"plates": plates, "n_plates": len(plates), "n_sites": len(self.sites),
                "n_cells": self.n_cells if self.source == "cells" else None, "channels": self.channels,
                "crops_around": "nucleus centres" if self.source == "cells" else "uniform points (tiles)",
                "labels_read": False, "sites_skipped": self.skipped}


def build_pool(df: pd.DataFrame, source_name: str, channels: list[str] | None, source: str = "cells",
               dna_channel: str = "DNA", illum: bool = True, max_sites: int | None = None) -> ImagePool:
    """Read every site of an index (or the first ``max_sites``) into an :class:`ImagePool`.

    Sites with no nucleus found are skipped and listed (a pool with no cell at all is an error).
    """
    from stratonet.extract.deep.cells_nuclei import nucleus_centers
    from stratonet.images.transforms import rescale_to_unit
    from stratonet.images.io import load_index_row
    from stratonet.core.progress import track

    if source not in CROP_SOURCES:
        raise ConfigError(f"unknown --crops '{source}' (use {', '.join(CROP_SOURCES)})")
    validate_index(df, source_name)
    chans, available = select_channels(df, channels, source_name, ConfigError)
    if source == "cells" and dna_channel not in available:
        raise ConfigError(f"{source_name}: --crops cells finds nuclei on '{dna_channel}', which the index lacks "
                          f"(channels: {', '.join(available)}); use --dna-channel or --crops tiles")
    read = chans + ([dna_channel] if source == "cells" and dna_channel not in chans else [])
    rows = df.to_dict("records")[: max_sites or None]
    planes, centers, sites, skipped = [], [], [], []
    for row in track(rows, "train ssl: reading sites"):
        try:
            raw = load_index_row(row, read, illum=illum, dtype=np.float32)
        except StratoNetError as exc:
            raise StratoNetError(f"{site_name(row)}: {exc} (train ssl reads every site of {source_name})") from exc
        unit = rescale_to_unit(raw)
        if source == "cells":
            c = nucleus_centers(unit[read.index(dna_channel)].numpy())
            if len(c) == 0:
                skipped.append(site_name(row))
                continue
            centers.append(c)
        else:
            centers.append(np.zeros((0, 2)))
        planes.append([unit[i].to(torch.float16) for i in range(len(chans))])
        sites.append(tuple(str(row[k]) for k in ("Metadata_Plate", "Metadata_Well", "Metadata_Site")))
    if not planes:
        raise StratoNetError(f"{source_name}: no site with a nucleus on '{dna_channel}' ({len(skipped)} skipped); "
                             "use --crops tiles")
    return ImagePool(channels=chans, planes=planes, centers=centers, sites=sites, source=source, skipped=skipped)
