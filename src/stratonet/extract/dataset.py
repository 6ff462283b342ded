"""Sites as model-ready units: decode, illumination-correct, rescale and resize, inside DataLoader workers.

Each item is one index row. It yields ``x`` of shape ``(N, C, S, S)`` float32 in [0, 1]: N = 1 for ``whole``, the
number of tiles for ``tiles`` and the number of nuclei for ``cells``. Errors are returned, not raised, so the main
process can apply the ``--on-error`` policy and name the site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from stratonet.errors import SiteError, StratoNetError
from stratonet.extract.cells import otsu_centers
from stratonet.extract.center import center_object_crops, require_found, segment_cells_for_masks
from stratonet.extract.scaling import Scaling
from stratonet.extract.transforms import channel_percentiles, rescale_to_unit, resize_batch
from stratonet.index.schema import ILLUM_PREFIX, STACK_PATH, site_name, site_paths
from stratonet.io import load_index_row, read_image, read_site_plane
from stratonet.preprocess import crops_around, tile_grid

MODES = ("whole", "tiles", "cells")


@dataclass
class Preprocess:
    """How a site becomes model input."""

    channels: list[str]
    mode: str = "whole"
    input_size: int = 224
    tile_size: int | None = None  # tiles: native-resolution tile side (default: input_size)
    crop_size: int = 128  # cells: native-resolution crop side around each nucleus
    low: float = 0.1
    high: float = 99.9
    illum: bool = True
    segment_channel: str = "DNA"  # cells without a centres table: Otsu on this channel
    scaling: "Scaling | None" = None  # fixed per-plate / bit-depth bounds; None = per-image percentiles
    center_object: bool = False  # cells / single-cell stacks: zero all but the object at the crop centre
    native_shape: tuple[int, int] | None = None  # whole: keep fields of this (H, W) as they are (no resampling)

    per_plane: bool = True  # whole mode: decode one plane at a time (same output; False = the stacked path)


class SiteDataset(Dataset):
    """Index rows -> dicts ``{"i", "x", "centers", "error"}``.

    Parameters
    ----------
    rows : list of dict
        Index rows to process.
    prep : Preprocess
    centers : dict, optional
        ``(plate, well, site)`` -> ``(N, 2)`` nucleus centres (y, x) for ``cells`` mode.
    """

    def __init__(self, rows: list[dict], prep: Preprocess, centers: dict | None = None):
        self.rows = rows
        self.prep = prep
        self.centers = centers

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i]
        try:
            x, centers = self._load(row)
            return {"i": i, "x": x, "centers": centers, "error": None}
        except StratoNetError as exc:
            return {"i": i, "x": None, "centers": None, "error": str(exc)}
        except Exception as exc:  # an unexpected reader failure still names the site
            return {"i": i, "x": None, "centers": None,
                    "error": f"site {site_name(row)}: {type(exc).__name__}: {exc}"}

    def _load(self, row: dict) -> tuple[torch.Tensor, np.ndarray | None]:
        p = self.prep
        if p.per_plane and p.mode == "whole" and not p.center_object and STACK_PATH not in row.keys():
            return self._load_whole_planes(row), None
        read = list(p.channels)
        needs_dna = (p.mode == "cells" and self.centers is None) or p.center_object
        seg_extra = needs_dna and p.segment_channel not in read
        if seg_extra:
            read.append(p.segment_channel)
        raw = load_index_row(row, read, illum=p.illum, dtype=np.float32)
        centers = None
        if p.mode == "cells":
            centers = self._centers(row, raw, read)
        labels = None
        if p.center_object:  # segmentation sees per-image percentiles whatever the scaling mode
            labels = segment_cells_for_masks(rescale_to_unit(raw).numpy(), read, p.segment_channel)
        if seg_extra:
            raw = raw[: len(p.channels)]
        bounds = p.scaling.bounds(row) if p.scaling is not None else None
        unit = rescale_to_unit(raw, p.low, p.high, bounds=bounds)  # (C, H, W) in [0, 1]
        if p.mode == "whole":
            whole = unit[None]
            if labels is not None:
                masked, found = center_object_crops(whole.numpy(), labels[None])
                if not found[0]:
                    raise SiteError(site_name(row), "center-object: no segmented cell lies at the crop centre")
                whole = torch.from_numpy(masked)
            return self._fit_whole(whole, row), None
        if p.mode == "tiles":
            tile = p.tile_size or p.input_size
            try:
                tiles = torch.from_numpy(tile_grid(unit.numpy(), tile))
            except ValueError as exc:
                raise SiteError(site_name(row), str(exc)) from exc
            return resize_batch(tiles, p.input_size), None
        crops = crops_around(unit.numpy(), centers, p.crop_size)
        if labels is not None:
            crops, found = center_object_crops(crops, crops_around(labels[None], centers, p.crop_size)[:, 0])
            require_found(found, site_name(row))
            crops, centers = crops[found], centers[found]  # a crop with nothing at its centre is not a cell
        return resize_batch(torch.from_numpy(np.ascontiguousarray(crops)), p.input_size), centers

    def _load_whole_planes(self, row: dict) -> torch.Tensor:
        """``whole`` mode without the temporary copies: each stored plane is converted straight into a float32
        ``(C, H, W)`` buffer that this dataset reuses from site to site, illumination-corrected there, and the
        buffer is rescaled in place and resized. The same arithmetic as the general path (equal output,
        tests/test_extract_deep.py), without its ``np.stack`` copy and the fresh full-resolution float array per
        site (page faults on ~23 MB per 1080x1080 5-channel site). Per-image percentiles of integer images come
        from the stored integers directly (the same values, no float -> integer round trip)."""
        p = self.prep
        site = site_name(row)
        paths = site_paths(row, list(p.channels))
        planes = []
        for ch in p.channels:
            planes.append(read_site_plane(paths, ch, site))
            if planes[-1].shape != planes[0].shape:
                raise SiteError(site, f"channel images differ in size ({p.channels[0]}={planes[0].shape[0]}x"
                                      f"{planes[0].shape[1]}, {ch}={planes[-1].shape[0]}x{planes[-1].shape[1]})")
        shape = (len(planes),) + planes[0].shape
        buf = getattr(self, "_buf", None)
        if buf is None or buf.shape != shape:
            buf = self._buf = np.empty(shape, dtype=np.float32)
        bounds = p.scaling.bounds(row) if p.scaling is not None else None
        per_image = []
        for i, (ch, plane) in enumerate(zip(p.channels, planes)):
            np.copyto(buf[i], plane, casting="unsafe")
            ip = row.get(f"{ILLUM_PREFIX}{ch}") if p.illum and hasattr(row, "get") else None
            corrected = isinstance(ip, str) and bool(ip)
            if corrected:
                fn = read_image(ip).astype(np.float32)
                if fn.shape != buf.shape[1:]:
                    raise SiteError(site, f"illumination function {ip} is {fn.shape}, image is {buf.shape[1:]}")
                np.divide(buf[i], np.maximum(fn, 1e-6), out=buf[i])
            if bounds is None:
                exact_ints = not corrected and plane.dtype in (np.uint8, np.uint16)
                per_image.append(channel_percentiles(plane if exact_ints else buf[i], p.low, p.high))
        unit = rescale_to_unit(buf, bounds=bounds if bounds is not None else per_image)  # in place on the buffer
        out = self._fit_whole(unit[None], row)
        return out.clone() if out.data_ptr() == unit.data_ptr() else out  # never hand out the reused buffer

    def _fit_whole(self, whole: torch.Tensor, row: dict) -> torch.Tensor:
        """A ``(1, C, H, W)`` field as model input: kept as it is at the run's native size, else resized."""
        p = self.prep
        if p.native_shape is None:
            return resize_batch(whole, p.input_size)
        if tuple(whole.shape[-2:]) != tuple(p.native_shape):
            h, w = p.native_shape
            raise SiteError(site_name(row), f"field is {whole.shape[-2]}x{whole.shape[-1]} px but this run's "
                                            f"fields are {h}x{w} (native input); pass --input-size N to resize "
                                            "every field to one size")
        return whole.contiguous()

    def _centers(self, row: dict, raw: np.ndarray, read: list[str]) -> np.ndarray:
        site = site_name(row)
        if self.centers is not None:
            key = tuple(str(row[k]) for k in ("Metadata_Plate", "Metadata_Well", "Metadata_Site"))
            c = self.centers.get(key)
            if c is None or len(c) == 0:
                raise SiteError(site, "no nucleus centres for this site in the centres table")
            return c
        if self.prep.segment_channel not in read:
            raise SiteError(site, f"cells mode without a centres table needs the '{self.prep.segment_channel}' channel")
        c = otsu_centers(raw[read.index(self.prep.segment_channel)])
        if len(c) == 0:
            raise SiteError(site, "no nuclei found by the Otsu fallback")
        return c


def collate_sites(items: list[dict]) -> dict:
    """Concatenate the units of several sites into one tensor (runs in the worker)."""
    ok = [it for it in items if it["x"] is not None]
    x = torch.cat([it["x"] for it in ok]) if ok else torch.zeros(0)
    return {
        "i": [it["i"] for it in ok],
        "counts": [int(it["x"].shape[0]) for it in ok],
        "centers": [it["centers"] for it in ok],
        "x": x,
        "errors": {it["i"]: it["error"] for it in items if it["x"] is None},
    }


class ThreadPrefetch:
    """Iterate ``iterable`` in a background thread, ``depth`` items ahead (decode overlapping the model without a
    worker process: tifffile's reads and torch's kernels release the GIL).

    Exceptions raised by the iterable are re-raised in the consumer. :meth:`close` (also on garbage collection, or
    when the consumer stops early) stops the thread after the item it is producing.
    """

    _END = object()

    def __init__(self, iterable, depth: int = 2):
        import queue
        import threading

        self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(iter(iterable),), daemon=True,
                                        name="stratonet-prefetch")
        self._thread.start()

    def _put(self, item) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, it) -> None:
        try:
            for item in it:
                if not self._put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer
            self._put((None, exc))
            return
        self._put((self._END, None))

    def __iter__(self):
        try:
            while True:
                item, exc = self._queue.get()
                if exc is not None:
                    raise exc
                if item is self._END:
                    return
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
