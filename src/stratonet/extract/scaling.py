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
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from stratonet.errors import ConfigError, InputFileError, SiteError, StratoNetError
from stratonet.runsignature import file_digest

SCALING_MODES = ("image", "plate", "bitdepth")
DEFAULT_SCALING = "plate"
SCALING_FORMAT = "stratonet.scaling/1"


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
    from stratonet.io import load_index_row

    if n_sites < 1:
        raise ConfigError(f"--scaling-sites must be >= 1, got {n_sites}")
    plates = {}
    sampled = {}
    for plate, picked in sample_sites(rows, n_sites, seed).items():
        pooled: list[list[np.ndarray]] = [[] for _ in channels]
        used = []
        for r in picked:
            try:
                img = load_index_row(r, list(channels), illum=illum, dtype=np.float32)
            except StratoNetError:
                if on_error == "fail":
                    raise
                continue
            used.append(r)
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
    return {"format": SCALING_FORMAT, "mode": "plate", "percentiles": [low, high], "sites_per_plate": n_sites,
            "seed": seed, "illum": illum, "pixel_stride": stride, "plates": plates, "sampled_sites": sampled}


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


def stored_dtype(row: dict, channel: str) -> np.dtype:
    """The stored dtype of one channel image of an index row (the first image is read once)."""
    from stratonet.index.schema import STACK_PATH
    from stratonet.io import read_image

    path = row.get(STACK_PATH) if STACK_PATH in row else row.get(f"Path_{channel}")
    if not isinstance(path, str) or not path:
        raise SiteError(f"{row.get('Metadata_Plate')}/{row.get('Metadata_Well')}/{row.get('Metadata_Site')}",
                        f"channel '{channel}' is missing")
    return read_image(path).dtype


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
        ``bitdepth`` mode: ``{channel: value mapped to 1.0}``.
    """

    def __init__(self, mode: str, channels: Sequence[str], low: float = 0.1, high: float = 99.9,
                 plates: dict | None = None, maxima: dict | None = None, source: str | None = None,
                 record: dict | None = None):
        if mode not in SCALING_MODES:
            raise ConfigError(f"unknown scaling '{mode}' (use {', '.join(SCALING_MODES)})")
        self.mode = mode
        self.channels = list(channels)
        self.low, self.high = float(low), float(high)
        self.plates = plates or {}
        self.maxima = maxima or {}
        self.source = source
        self.record = record
        self.estimated = False  # plate mode: True when the percentiles are this run's own estimate

    def bounds(self, row) -> np.ndarray | None:
        """``(C, 2)`` float32 fixed bounds for this row's channels, or None for per-image percentiles."""
        if self.mode == "image":
            return None
        if self.mode == "bitdepth":
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
            d["maxima"] = dict(self.maxima)
        return d

    def identity(self) -> dict:
        """:meth:`describe` as a run's signature holds it: the numbers, and where they came from by content (the
        run's own estimate, or the sha256 of a given file), never a path."""
        d = self.describe()
        d.pop("file", None)
        if self.mode == "plate":
            d["source"] = "estimated" if self.estimated else file_digest(self.source)
        return d


def requested_scaling(mode: str, low: float = 0.1, high: float = 99.9, scaling_file: str | Path | None = None,
                      n_sites: int = 24, seed: int = 0) -> dict:
    """The part of :meth:`Scaling.identity` that the options fix before any image is read.

    A resume compares it with the stored signature *before* :func:`resolve_scaling`, which may estimate plate
    percentiles and (re)write ``<out stem>.scaling.json``: a refused rerun must leave that file as it was. A given
    scaling file counts by its content (sha256), never by its path as typed.
    """
    d: dict = {"mode": mode}
    if mode in ("image", "plate"):
        d["percentiles"] = [low, high]
    if mode == "plate":
        given = scaling_file is not None and Path(scaling_file).is_file()
        d["source"] = "estimated" if scaling_file is None else (file_digest(scaling_file) if given else None)
        if scaling_file is None:
            d["sites_per_plate"], d["seed"] = n_sites, seed
    return d


def resolve_scaling(mode: str, rows: Sequence[dict], channels: Sequence[str], out: str | Path,
                    low: float = 0.1, high: float = 99.9, scaling_file: str | Path | None = None,
                    bit_depth: int | None = None, n_sites: int = 24, seed: int = 0, illum: bool = True,
                    log=None, on_error: str = "fail") -> Scaling:
    """Turn a scaling option into numbers.

    ``plate`` mode reads ``scaling_file`` when given, else reuses ``<out stem>.scaling.json`` when it exists (a
    rerun), else estimates the percentiles from a sample of sites and writes that file. ``bitdepth`` reads one
    image per channel to learn the stored dtype unless ``bit_depth`` is given.
    """
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
        if not rows:
            raise ConfigError("bitdepth scaling: no site to learn the image dtype from; pass --bit-depth N")
        return Scaling("bitdepth", channels, maxima={c: dtype_max(stored_dtype(rows[0], c)) for c in channels})
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
                       record=rec)
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
            return _estimated(Scaling("plate", channels, low, high, plates=rec["plates"], source=str(path),
                                      record=rec))
    rec = estimate_plate_bounds(rows, channels, low, high, n_sites=n_sites, seed=seed, illum=illum,
                                on_error=on_error)
    save_scaling(rec, path)
    if log is not None:
        log.info("plate scaling estimated from %s site(s) per plate -> %s", n_sites, path)
    return _estimated(Scaling("plate", channels, low, high, plates=rec["plates"], source=str(path), record=rec))


def _estimated(scale: Scaling) -> Scaling:
    scale.estimated = True
    return scale
