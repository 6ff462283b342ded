"""How raw intensities become [0, 1] model input: per image, per plate and channel, or by bit depth.

Three modes, shared by ``extract deep`` and ``extract pixel``:

- ``image``: every channel image between its own 0.1 and 99.9 percentiles. Contrast is always full, but absolute
  intensity differences between images (a brighter ER, a dimmer nucleus) are erased.
- ``plate``: one pair of percentiles per plate and channel, estimated from a seeded sample of the plate's sites.
  Intensity differences between wells of a plate survive; plate-to-plate exposure differences are removed. The
  numbers are written next to the output (``<stem>.scaling.json``) and reused by a rerun, and can be passed to
  another run explicitly.
- ``bitdepth``: divide by the largest value the stored dtype can hold (255, 65535), or ``2**bit_depth - 1``.
  Nothing is estimated; fully comparable across plates, but a dim 16-bit image uses a small part of [0, 1].

Every image is first put on the scale of its own stored dtype (uint8 / 255, uint16 / 65535, float as stored) before
any pooling, so a uint8 or float file inside a uint16 plate neither shifts the plate's percentiles nor is scaled by
another file's dtype (issue 27, D3). Plate percentiles are stored on that scale (``"units": "dtype"``); a record
without ``units`` (written before) holds raw values and is applied to raw values, as it was.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from stratonet.core.errors import ConfigError, InputFileError, StratoNetError

SCALING_MODES = ("image", "plate", "bitdepth")
DEFAULT_SCALING = "plate"
SCALING_FORMAT = "stratonet.scaling/2"
DTYPE_UNITS = "dtype"  # a record's bounds are fractions of each file's dtype full scale


@dataclass(frozen=True)
class ScalingSpec:
    """The intensity-scaling options of an extractor (``--scaling``, ``--scaling-file``, ``--bit-depth``,
    ``--scaling-sites``, the seed of the site sample, illumination correction), built once by the CLI.

    Attributes
    ----------
    mode : {"plate", "image", "bitdepth"}
    percentiles : (low, high)
        Percentiles mapped to 0 and 1 (``image`` and ``plate`` modes).
    file : path, optional
        ``plate``: percentiles of another run (a ``.scaling.json``) instead of an estimate.
    bit_depth : int, optional
        ``bitdepth``: divide by ``2**bit_depth - 1`` instead of the stored dtype's maximum.
    sites : int
        ``plate``: sites sampled per plate to estimate the percentiles.
    seed : int
        Seed of that sample.
    illum : bool
        Apply ``Illum_<Channel>`` functions (also while estimating the percentiles).
    """

    mode: str = DEFAULT_SCALING
    percentiles: tuple[float, float] = (0.1, 99.9)
    file: str | Path | None = None
    bit_depth: int | None = None
    sites: int = 24
    seed: int = 0
    illum: bool = True

    @property
    def low(self) -> float:
        return self.percentiles[0]

    @property
    def high(self) -> float:
        return self.percentiles[1]

    def requested(self) -> dict:
        """:func:`requested_scaling` of these options (the part of the resume signature known before any image)."""
        return requested_scaling(self.mode, self.low, self.high, self.file, self.sites, self.seed)


def own_full_scale(dtype) -> float:
    """The stored value of a file's dtype that means "full scale": the integer maximum (255, 65535), 1 for bool;
    float images are taken as stored (1.0)."""
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        return float(np.iinfo(dt).max)
    return 1.0


def load_dtype_scaled(row, channels: Sequence[str], illum: bool = True) -> tuple[np.ndarray, list[str]]:
    """``(C, H, W)`` float32 of one index row, each channel divided by its own file's :func:`own_full_scale`, and
    the stored dtype name of each channel."""
    from stratonet.images.io import load_index_row

    dtype_of: list = []
    img = load_index_row(row, list(channels), illum=illum, dtype=np.float32, dtype_of=dtype_of)
    scales = np.array([own_full_scale(d) for d in dtype_of], dtype=np.float32)
    if (scales != 1.0).any():
        img = img / scales[:, None, None]
    return img, [str(d) for d in dtype_of]


def scaling_path(out: str | Path) -> Path:
    """``deep.parquet`` -> ``deep.scaling.json`` (the plate percentiles used by a run)."""
    p = Path(out)
    return p.with_name(p.name.removesuffix(".parquet") + ".scaling.json")


def _plate_of(row) -> str:
    return str(row["Metadata_Plate"])


def sample_sites(rows: Sequence[dict], n: int, seed: int = 0) -> dict[str, list[dict]]:
    """Up to ``n`` sites per plate, drawn without replacement by a seeded generator (all sites if fewer)."""
    by_plate: dict[str, list[dict]] = {}
    for r in rows:
        by_plate.setdefault(_plate_of(r), []).append(r)
    rng = np.random.default_rng(seed)
    out = {}
    for plate in sorted(by_plate):
        grp = by_plate[plate]
        pick = sorted(rng.choice(len(grp), size=min(n, len(grp)), replace=False)) if len(grp) > n else range(len(grp))
        out[plate] = [grp[i] for i in pick]
    return out


def note_dtypes(seen: dict, row, names: Sequence[str]) -> None:
    """Record the stored dtypes of one row's files under its plate (``seen``: plate -> set of dtype names)."""
    seen.setdefault(_plate_of(row), set()).update(str(n) for n in names)


def mixed_dtype_plates(seen: dict) -> dict[str, list[str]]:
    """Plates whose files have more than one stored dtype: ``{plate: [dtype, ...]}``."""
    return {p: sorted(d) for p, d in sorted(seen.items()) if len(d) > 1}


def mixed_dtype_line(mixed: dict[str, list[str]]) -> str | None:
    """One summary line naming the plates that mix file dtypes (None when none does)."""
    if not mixed:
        return None
    shown = "; ".join(f"{p} ({', '.join(d)})" for p, d in list(mixed.items())[:5])
    more = f" and {len(mixed) - 5} more" if len(mixed) > 5 else ""
    return (f"plate(s) mixing image dtypes: {shown}{more}; each file was scaled by its own dtype's full scale "
            "before pooling (see mixed_dtype_plates in the manifest)")


def warn_mixed_dtypes(mixed: dict[str, list[str]]) -> None:
    """Print :func:`mixed_dtype_line` as a warning on the terminal (nothing when no plate mixes dtypes)."""
    line = mixed_dtype_line(mixed)
    if line:
        from stratonet.core.progress import console

        console.print(f"[yellow]warning:[/] {line}", highlight=False)


def estimate_plate_bounds(rows: Sequence[dict], channels: Sequence[str], low: float = 0.1, high: float = 99.9,
                          n_sites: int = 24, seed: int = 0, illum: bool = True, stride: int = 2,
                          on_error: str = "fail") -> dict:
    """Per plate and channel ``low``/``high`` percentiles of the pooled pixels of a seeded sample of sites.

    Parameters
    ----------
    rows : sequence of dict
        Index rows (all sites of the run).
    channels : sequence of str
    low, high : float
        Percentiles in [0, 100].
    n_sites : int
        Sites sampled per plate.
    seed : int
        Seed of the site sample.
    illum : bool
        Apply ``Illum_<Channel>`` functions before estimating, as extraction does.
    stride : int
        Every ``stride``-th pixel in each direction is pooled (bounds memory; the percentiles barely move).
    on_error : {"fail", "skip"}
        A sampled site that cannot be read stops the run, or is left out of the sample (extraction then records
        it as an error).

    Returns
    -------
    dict
        The scaling record (see :func:`save_scaling`): mode, percentiles, sample and ``plates`` ->
        ``{channel: [lo, hi]}``.
    """
    from stratonet.index.schema import site_name

    if n_sites < 1:
        raise ConfigError(f"--scaling-sites must be >= 1, got {n_sites}")
    plates, sampled, dtypes = {}, {}, {}
    for plate, picked in sample_sites(rows, n_sites, seed).items():
        pooled: list[list[np.ndarray]] = [[] for _ in channels]
        used, seen = [], set()
        for r in picked:
            try:
                img, names = load_dtype_scaled(r, channels, illum=illum)  # each file on its own dtype's scale
            except StratoNetError:
                if on_error == "fail":
                    raise
                continue
            used.append(r)
            seen.update(names)
            for i in range(len(channels)):
                pooled[i].append(img[i, ::stride, ::stride].ravel())
        if not used:
            raise StratoNetError(f"plate {plate}: none of the {len(picked)} sampled site(s) could be read to "
                                 "estimate its scaling percentiles")
        picked = used
        bounds = {}
        for ch, parts in zip(channels, pooled):
            lo, hi = np.percentile(np.concatenate(parts), [low, high])
            bounds[ch] = [float(lo), float(hi)]
        plates[plate] = bounds
        sampled[plate] = [site_name(r) for r in picked]
        dtypes[plate] = sorted(seen)
    return {"format": SCALING_FORMAT, "mode": "plate", "units": DTYPE_UNITS, "percentiles": [low, high],
            "sites_per_plate": n_sites, "seed": seed, "illum": illum, "pixel_stride": stride, "plates": plates,
            "sampled_sites": sampled, "sampled_dtypes": dtypes}


def save_scaling(record: dict, path: str | Path) -> Path:
    """Write a scaling record as JSON (sorted keys, so equal numbers give equal files)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(record, indent=2, sort_keys=True))
    return p


def load_scaling(path: str | Path) -> dict:
    """Read and check a scaling record written by :func:`save_scaling` (or by hand in the same form)."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(str(p), "scaling file not found")
    try:
        rec = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputFileError(str(p), f"not a JSON scaling file ({exc})") from exc
    if not isinstance(rec, dict) or rec.get("mode") != "plate" or not isinstance(rec.get("plates"), dict):
        raise InputFileError(str(p), "not a plate scaling file (needs mode 'plate' and 'plates': "
                                     "{plate: {channel: [low, high]}})")
    for plate, chans in rec["plates"].items():
        for ch, b in (chans or {}).items():
            if not (isinstance(b, list) and len(b) == 2 and all(isinstance(v, (int, float)) for v in b)):
                raise InputFileError(str(p), f"plate {plate} channel {ch}: bounds must be [low, high] numbers")
    return rec


def record_digest(record: dict) -> str:
    """sha256 of the record's canonical JSON: two runs with equal numbers have equal digests."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def dtype_max(dtype: np.dtype, bit_depth: int | None = None) -> float:
    """The value that maps to 1.0 in ``bitdepth`` mode: ``2**bit_depth - 1`` or the integer dtype's maximum."""
    if bit_depth is not None:
        if not 1 <= int(bit_depth) <= 32:
            raise ConfigError(f"--bit-depth must be between 1 and 32, got {bit_depth}")
        return float(2 ** int(bit_depth) - 1)
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        return float(np.iinfo(dt).max)
    raise ConfigError(f"bitdepth scaling needs integer images, these are {dt}; pass --bit-depth N")


class Scaling:
    """Resolved intensity scaling of a run: which bounds each (plate, channel) image is rescaled between.

    Parameters
    ----------
    mode : {"image", "plate", "bitdepth"}
    channels : list of str
    low, high : float
        Percentiles (``image`` and ``plate`` modes).
    plates : dict, optional
        ``plate`` mode: ``{plate: {channel: [lo, hi]}}``.
    maxima : dict, optional
        ``bitdepth`` mode with a given bit depth: ``{channel: value mapped to 1.0}``; without, each file's own
        dtype maximum.
    per_dtype : bool
        Bounds are fractions of each file's dtype full scale (see :func:`own_full_scale`), turned into stored
        values image by image; False: the bounds are stored values.
    """

    def __init__(self, mode: str, channels: Sequence[str], low: float = 0.1, high: float = 99.9,
                 plates: dict | None = None, maxima: dict | None = None, source: str | None = None,
                 record: dict | None = None, per_dtype: bool = False):
        if mode not in SCALING_MODES:
            raise ConfigError(f"unknown scaling '{mode}' (use {', '.join(SCALING_MODES)})")
        self.mode = mode
        self.channels = list(channels)
        self.low, self.high = float(low), float(high)
        self.plates = plates or {}
        self.maxima = maxima or {}
        self.source = source
        self.record = record
        self.per_dtype = per_dtype

    def bounds(self, row, dtypes: Sequence | None = None) -> np.ndarray | None:
        """``(C, 2)`` float32 fixed bounds, in stored values, for this row's channels (None: per-image
        percentiles). ``dtypes``: the stored dtype of each channel's file, needed when :attr:`per_dtype`."""
        if self.mode == "image":
            return None
        b = self._bounds(row)
        if self.per_dtype:
            if dtypes is None:
                raise ValueError("per-dtype scaling needs the stored dtype of each channel")
            b = b * np.array([own_full_scale(d) for d in dtypes], dtype=np.float32)[:, None]
        return b

    def _bounds(self, row) -> np.ndarray:
        if self.mode == "bitdepth":
            if not self.maxima:
                return np.array([[0.0, 1.0]] * len(self.channels), dtype=np.float32)
            return np.array([[0.0, self.maxima[c]] for c in self.channels], dtype=np.float32)
        plate = _plate_of(row)
        per = self.plates.get(plate)
        if per is None:
            raise StratoNetError(f"{self.source or 'scaling'}: no percentiles for plate '{plate}' "
                                 f"(it has {', '.join(sorted(self.plates)) or 'none'})")
        missing = [c for c in self.channels if c not in per]
        if missing:
            raise StratoNetError(f"{self.source or 'scaling'}: plate '{plate}' has no percentiles for "
                                 f"channel(s) {missing}")
        return np.array([per[c] for c in self.channels], dtype=np.float32)

    def describe(self) -> dict:
        """What provenance and manifests record: the mode and the numbers used."""
        d: dict = {"mode": self.mode}
        if self.mode in ("image", "plate"):
            d["percentiles"] = [self.low, self.high]
        if self.mode == "plate":
            d["plates"] = {p: {c: self.plates[p][c] for c in self.channels if c in self.plates[p]}
                           for p in sorted(self.plates)}
            d["file"] = self.source
            if self.record is not None:
                d["sites_per_plate"] = self.record.get("sites_per_plate")
                d["seed"] = self.record.get("seed")
        if self.mode == "bitdepth":
            d["maxima"] = dict(self.maxima) if self.maxima else "each file's dtype maximum (float as stored)"
        if self.mode == "plate":
            d["units"] = DTYPE_UNITS if self.per_dtype else "stored values"
        return d

    def identity(self) -> dict:
        """:meth:`describe` as a run's signature holds it: the numbers, never the path of the file they are kept
        in (a run's own estimate and the same numbers passed as a file, e.g. by the Ray and shard engines, are the
        same run)."""
        d = self.describe()
        d.pop("file", None)
        return d


def requested_scaling(mode: str, low: float = 0.1, high: float = 99.9, scaling_file: str | Path | None = None,
                      n_sites: int = 24, seed: int = 0) -> dict:
    """The part of :meth:`Scaling.identity` that the options fix before any image is read.

    A resume compares it with the stored signature *before* :func:`resolve_scaling`, which may estimate plate
    percentiles and (re)write ``<out stem>.scaling.json``: a refused rerun must leave that file as it was. A given
    scaling file counts by its numbers (compared once read), never by its path as typed.
    """
    d: dict = {"mode": mode}
    if mode in ("image", "plate"):
        d["percentiles"] = [low, high]
    if mode == "plate" and scaling_file is None:  # a given file is compared by its numbers, once read
        d["sites_per_plate"], d["seed"] = n_sites, seed
    return d


def resolve_scaling(spec: ScalingSpec, rows: Sequence[dict], channels: Sequence[str], out: str | Path,
                    log=None, on_error: str = "fail") -> Scaling:
    """Turn a scaling option into numbers.

    ``plate`` mode reads ``spec.file`` when given, else reuses ``<out stem>.scaling.json`` when it exists (a
    rerun), else estimates the percentiles from a sample of sites and writes that file. ``bitdepth`` reads one
    image per channel to learn the stored dtype unless ``spec.bit_depth`` is given.
    """
    mode, low, high, scaling_file, bit_depth = spec.mode, spec.low, spec.high, spec.file, spec.bit_depth
    n_sites, seed, illum = spec.sites, spec.seed, spec.illum
    if mode not in SCALING_MODES:
        raise ConfigError(f"unknown scaling '{mode}' (use {', '.join(SCALING_MODES)})")
    if scaling_file is not None and mode != "plate":
        raise ConfigError(f"--scaling-file applies to --scaling plate, not '{mode}'")
    if bit_depth is not None and mode != "bitdepth":
        raise ConfigError(f"--bit-depth applies to --scaling bitdepth, not '{mode}'")
    if mode == "image":
        return Scaling("image", channels, low, high)
    if mode == "bitdepth":
        if bit_depth is not None:
            value = dtype_max(np.uint8, bit_depth)
            return Scaling("bitdepth", channels, maxima={c: value for c in channels})
        return Scaling("bitdepth", channels, per_dtype=True)  # each file by its own dtype, never the first row's
    if scaling_file is not None:
        rec = load_scaling(scaling_file)
        lacking = sorted({_plate_of(r) for r in rows} - set(rec["plates"]))
        if lacking:
            raise InputFileError(str(scaling_file), f"no percentiles for plate(s) {lacking[:5]} of this index")
        no_ch = sorted({c for per in rec["plates"].values() for c in channels if c not in per})
        if no_ch:
            raise InputFileError(str(scaling_file), f"no percentiles for channel(s) {no_ch}")
        return Scaling("plate", channels, rec.get("percentiles", [low, high])[0],
                       rec.get("percentiles", [low, high])[1], plates=rec["plates"], source=str(scaling_file),
                       record=rec, per_dtype=rec.get("units") == DTYPE_UNITS)
    import os

    if os.environ.get("STRATONET_SHARD"):
        raise ConfigError(f"plate scaling inside shard {os.environ['STRATONET_SHARD']}: the percentiles must come from "
                          "the whole index; pass scaling_file (the CLI estimates it once for all shards)")
    path = scaling_path(out)
    if path.exists():
        rec = load_scaling(path)
        same = (rec.get("percentiles") == [low, high] and rec.get("sites_per_plate") == n_sites
                and rec.get("seed") == seed and all(c in next(iter(rec["plates"].values()), {}) for c in channels))
        if same:
            if log is not None:
                log.info("plate scaling reused from %s", path)
            return Scaling("plate", channels, low, high, plates=rec["plates"], source=str(path), record=rec,
                           per_dtype=rec.get("units") == DTYPE_UNITS)
    rec = estimate_plate_bounds(rows, channels, low, high, n_sites=n_sites, seed=seed, illum=illum,
                                on_error=on_error)
    save_scaling(rec, path)
    if log is not None:
        log.info("plate scaling estimated from %s site(s) per plate -> %s", n_sites, path)
    return Scaling("plate", channels, low, high, plates=rec["plates"], source=str(path), record=rec,
                   per_dtype=True)
