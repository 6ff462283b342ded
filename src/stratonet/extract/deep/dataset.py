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

from stratonet.core.errors import SiteError, StratoNetError
from stratonet.extract.deep.cells_nuclei import nucleus_centers, sample_centers
from stratonet.extract.classical.center import center_object_crops, require_found, segment_cells_for_masks
from stratonet.images.scaling import Scaling
from stratonet.images.transforms import channel_percentiles, rescale_to_unit, resize_batch, scale_resize_planes
from stratonet.index.schema import ILLUM_PREFIX, STACK_PATH, site_name, site_paths
from stratonet.images.io import load_index_row, read_image, read_site_plane
from stratonet.images.preprocess import crops_around, tile_grid

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
    segment_channel: str = "DNA"  # cells without a centres table: nuclei found on this channel
    max_cells: int | None = None  # cells: at most this many nuclei per site (seeded sample), None = all
    cells_seed: int = 0  # the sample's seed
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

    def _note(self, dtypes) -> None:
        """Remember the stored dtypes of the site being loaded (returned with the item, per thread)."""
        self._local().dtypes = [str(d) for d in dtypes]

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i]
        try:
            self._local().dtypes = []
            x, centers = self._load(row)
            return {"i": i, "x": x, "centers": centers, "error": None, "dtypes": self._local().dtypes}
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
        dtype_of: list = []
        raw = load_index_row(row, read, illum=p.illum, dtype=np.float32, dtype_of=dtype_of)
        self._note(dtype_of[: len(p.channels)])
        centers = None
        if p.mode == "cells":
            centers = self._centers(row, raw, read)
        labels = None
        if p.center_object:  # segmentation sees per-image percentiles whatever the scaling mode
            labels = segment_cells_for_masks(rescale_to_unit(raw).numpy(), read, p.segment_channel)
        if seg_extra:
            raw = raw[: len(p.channels)]
        bounds = p.scaling.bounds(row, dtype_of[: len(p.channels)]) if p.scaling is not None else None
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
        """``whole`` mode without full-resolution float copies where possible.

        When the field is resized and its bounds are known before any float conversion (plate or bit-depth
        scaling, or per-image percentiles of uncorrected integer planes, which come from the stored integers),
        :func:`scale_resize_planes` converts, corrects, rescales and shrinks each plane strip by strip. Otherwise
        each plane goes into a float32 ``(C, H, W)`` buffer reused from site to site (per thread), is corrected
        there, and the buffer is rescaled in place and resized. Both give the general path's numbers within
        float32 rounding (tests/extract/test_extract_deep.py).
        """
        p = self.prep
        site = site_name(row)
        paths = site_paths(row, list(p.channels))
        planes = []
        for ch in p.channels:
            planes.append(read_site_plane(paths, ch, site))
            if planes[-1].shape != planes[0].shape:
                raise SiteError(site, f"channel images differ in size ({p.channels[0]}={planes[0].shape[0]}x"
                                      f"{planes[0].shape[1]}, {ch}={planes[-1].shape[0]}x{planes[-1].shape[1]})")
        hw = planes[0].shape
        illum = []
        for ch in p.channels:
            ip = row.get(f"{ILLUM_PREFIX}{ch}") if p.illum and hasattr(row, "get") else None
            fn = None
            if isinstance(ip, str) and ip:
                fn = read_image(ip).astype(np.float32)
                if fn.shape != hw:
                    raise SiteError(site, f"illumination function {ip} is {fn.shape}, image is {hw}")
            illum.append(fn)
        self._note([pl.dtype for pl in planes])
        bounds = p.scaling.bounds(row, [pl.dtype for pl in planes]) if p.scaling is not None else None
        if bounds is None and all(fn is None and pl.dtype in (np.uint8, np.uint16) for fn, pl in zip(illum, planes)):
            bounds = [channel_percentiles(pl, p.low, p.high) for pl in planes]  # exact, from the stored integers
        if bounds is not None and p.native_shape is None and tuple(hw) != (p.input_size, p.input_size):
            return scale_resize_planes(planes, bounds, p.input_size, illum)
        shape = (len(planes),) + hw
        local = self._local()
        buf = getattr(local, "buf", None)
        if buf is None or buf.shape != shape:
            buf = local.buf = np.empty(shape, dtype=np.float32)
        for i, (plane, fn) in enumerate(zip(planes, illum)):
            np.copyto(buf[i], plane, casting="unsafe")
            if fn is not None:
                np.divide(buf[i], np.maximum(fn, 1e-6), out=buf[i])
        if bounds is None:
            bounds = [channel_percentiles(buf[i], p.low, p.high) for i in range(len(planes))]
        unit = rescale_to_unit(buf, bounds=bounds, inplace=True)  # the per-thread scratch buffer
        out = self._fit_whole(unit[None], row)
        return out.clone() if out.data_ptr() == unit.data_ptr() else out  # never hand out the reused buffer

    def _local(self):
        """Per-thread scratch space (:class:`ParallelDecode` calls this dataset from several threads)."""
        local = self.__dict__.get("_thread_local")
        if local is None:
            import threading

            local = self._thread_local = threading.local()
        return local

    def __getstate__(self) -> dict:  # DataLoader workers get a copy without the thread-local scratch
        state = dict(self.__dict__)
        state.pop("_thread_local", None)
        return state

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
            return sample_centers(c, self.prep.max_cells, self.prep.cells_seed, key)
        if self.prep.segment_channel not in read:
            raise SiteError(site, f"cells mode without a centres table needs the '{self.prep.segment_channel}' channel")
        # smoothing, Otsu, size filter and declumping (extract/cells_nuclei.py)
        # a copy: rescale_to_unit works in place on float32 input, and raw is rescaled again below
        dna = rescale_to_unit(np.array(raw[read.index(self.prep.segment_channel)], copy=True)).numpy()[0]
        c = nucleus_centers(dna)
        if len(c) == 0:
            raise SiteError(site, f"no nuclei found on {self.prep.segment_channel} (give a --centers table)")
        return sample_centers(c, self.prep.max_cells, self.prep.cells_seed, tuple(str(row[k]) for k in
                              ("Metadata_Plate", "Metadata_Well", "Metadata_Site")))


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
        "dtypes": [it.get("dtypes", []) for it in ok],
    }


def pin_torch_threads(n: int | None = None) -> int:
    """Set (``n``) and pin the calling thread's torch intra-op thread count; return it.

    torch initialises a thread's OpenMP thread count lazily, on its first parallel call, from the *process-wide*
    value last passed to ``torch.set_num_threads`` by any thread. A thread that sets its count but has not yet run a
    parallel op therefore silently drops to 1 when a decode thread meanwhile calls ``torch.set_num_threads(1)``.
    Asking for the count runs the lazy initialisation now, so that later calls elsewhere cannot change it.
    """
    if n is not None:
        torch.set_num_threads(int(n))
    return torch.get_num_threads()


def _one_torch_thread() -> None:
    pin_torch_threads(1)


class ParallelDecode:
    """Decode sites on ``threads`` threads, either in line (between model batches) or ahead (while the model runs).

    In line, decoding and the model never compete for cores, and each decode step uses every core: fastest on a
    dedicated machine. Ahead, the next sites decode while the model runs: when other processes keep cores busy,
    the extra runnable threads win this run a larger share of the CPU. ``ahead=None`` chooses before every group
    of sites from :class:`stratonet.core.cpuload.OtherLoad`: ahead while other processes used more than
    ``busy_cores`` cores since the last choice, else in line.

    Groups of ``threads * sites_per_batch`` sites are decoded together (one ``sites_per_batch`` share per thread)
    and handed out as ``threads`` batches, in index order.

    Parameters
    ----------
    dataset : SiteDataset
    sites_per_batch : int
    threads : int
        Decode threads; each runs torch with one intra-op thread.
    ahead : bool or None
        True: always ahead; False: always in line; None: chosen per group by the machine's load.
    busy_cores : float
        Threshold of ``ahead=None``.
    """

    def __init__(self, dataset: "SiteDataset", sites_per_batch: int, threads: int, ahead: bool | None = False,
                 busy_cores: float = 0.5):
        from concurrent.futures import ThreadPoolExecutor

        self.dataset = dataset
        self.sites_per_batch = max(1, int(sites_per_batch))
        self.threads = max(1, int(threads))
        self.ahead = ahead
        self.busy_cores = float(busy_cores)
        self.groups_ahead = self.groups_in_line = 0  # how the groups were decoded (for the manifest)
        self._probe = None
        if ahead is None:
            from stratonet.core.cpuload import OtherLoad

            self._probe = OtherLoad()
        pin_torch_threads()  # the caller's model threads keep their count once the decode threads set theirs to 1
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="stratonet-decode",
                                        initializer=_one_torch_thread)

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.sites_per_batch)

    def _decode_share(self, start: int) -> dict:
        stop = min(start + self.sites_per_batch, len(self.dataset))
        return collate_sites([self.dataset[i] for i in range(start, stop)])

    def _submit(self, groups) -> list | None:
        starts = next(groups, None)
        return None if starts is None else [self._pool.submit(self._decode_share, s) for s in starts]

    def _go_ahead(self) -> bool:
        if self._probe is None:
            return bool(self.ahead)
        others = self._probe.cores()
        return others is not None and others > self.busy_cores

    def __iter__(self):
        n = len(self.dataset)
        step = self.sites_per_batch * self.threads
        groups = (range(g, min(g + step, n), self.sites_per_batch) for g in range(0, n, step))
        try:
            pending = self._submit(groups)
            while pending is not None:
                done = [f.result() for f in pending]
                ahead = self._go_ahead()
                pending = self._submit(groups) if ahead else None
                if ahead:
                    self.groups_ahead += 1
                else:
                    self.groups_in_line += 1
                yield from done
                if not ahead:
                    pending = self._submit(groups)
        finally:
            self.close()

    def describe(self) -> str:
        """How decoding ran, for the manifest."""
        mode = {True: "ahead", False: "in line", None: "auto"}[self.ahead]
        return (f"{mode} on {self.threads} thread(s); groups of sites decoded ahead: {self.groups_ahead}, "
                f"in line: {self.groups_in_line}")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
