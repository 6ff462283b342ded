"""The flattened-pixel baseline: per site and channel, percentile rescale, anti-aliased resize, flatten.

Features are named ``<Channel>_px_<iiii>`` (row-major pixel index), so channels can be selected by name.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.index.schema import channels_of, site_name, validate_index
from stratonet.images.io import load_index_row
from stratonet.images.scaling import (DEFAULT_SCALING, mixed_dtype_plates, note_dtypes, requested_scaling,
                                       resolve_scaling, warn_mixed_dtypes)
from stratonet.images.transforms import rescale_to_unit
from stratonet.images.preprocess import rescale_percentile, resize
from stratonet.core.progress import get_logger, track
from stratonet.core.remote import is_url
from stratonet.runtime.resumable import ErrorLog, PartitionedWriter, check_resume_settings, row_key_columns
from stratonet.runtime.runfinish import errors_path, finish_run, require_parquet_output, require_rows
from stratonet.runtime.runguard import fault_point
from stratonet.core.runinfo import ResourceMonitor, device_info, package_versions
from stratonet.core.tables import metadata_columns, read_table, stamp_provenance

CELL_KEYS = ("Metadata_ObjectNumber", "Metadata_Cell_ID", "Metadata_CellID")


def pixel_feature_names(channels: Sequence[str], size: int) -> list[str]:
    """``<Channel>_px_<iiii>`` for every channel and pixel."""
    return [f"{ch}_px_{i:04d}" for ch in channels for i in range(size * size)]


def block_downsample(image: np.ndarray, size: int, oversample: int = 4) -> np.ndarray:
    """Average non-overlapping blocks so each side is still >= ``oversample * size`` pixels.

    Block averaging is itself an anti-aliasing filter; it spares the final Gaussian-prefiltered resize a
    very wide kernel (1080 -> 16 pixels would need sigma ~ 33), which makes it ~ 50x faster.
    """
    c, h, w = image.shape
    factor = max(1, min(h, w) // (oversample * size))
    if factor == 1:
        return image
    hh, ww = (h // factor) * factor, (w // factor) * factor
    y0, x0 = (h - hh) // 2, (w - ww) // 2
    crop = image[:, y0: y0 + hh, x0: x0 + ww]
    return crop.reshape(c, hh // factor, factor, ww // factor, factor).mean(axis=(2, 4))


def pixel_features(image: np.ndarray, size: int, low: float = 0.1, high: float = 99.9,
                   bounds: np.ndarray | None = None) -> np.ndarray:
    """``(C, H, W)`` -> ``C * size * size`` features: rescale to [0, 1], anti-aliased resize, flatten.

    Without ``bounds`` each channel is rescaled between its own ``low``/``high`` percentiles; ``bounds``
    (``(C, 2)``, e.g. plate percentiles or ``[0, dtype max]``) fixes the values mapped to 0 and 1.
    """
    if bounds is None:
        x = rescale_percentile(image, low=low, high=high)
    else:
        x = rescale_to_unit(image, bounds=np.asarray(bounds, dtype=np.float32)).numpy()
    return resize(block_downsample(x, size), size).reshape(-1)


def key_columns(index: pd.DataFrame) -> list[str]:
    """Columns identifying a unit of work: plate, well, site, plus a cell id for single-cell stacks."""
    return row_key_columns(index)


def extract_pixel(
    index: pd.DataFrame | str | Path,
    out: str | Path,
    size: int = 16,
    channels: Sequence[str] | None = None,
    illum: bool = True,
    on_error: str = "fail",
    low: float = 0.1,
    high: float = 99.9,
    scaling: str = DEFAULT_SCALING,
    scaling_file: str | Path | None = None,
    bit_depth: int | None = None,
    scaling_sites: int = 24,
    seed: int = 0,
    overwrite: bool = False,
    flush_seconds: float = 60.0,
    on_start: Callable[[], object] | None = None,
) -> Path:
    """Write the pixel-baseline feature table (resumable).

    Parameters
    ----------
    index : DataFrame or path
        Image index.
    out : path
        Output Parquet; parts go to ``<out>.parts`` and a rerun skips sites already written.
    size : int
        Side of the resized image.
    channels : sequence of str, optional
        Default: every channel of the index.
    illum : bool
        Divide by ``Illum_<Channel>`` functions when the index has them.
    on_error : {"fail", "skip"}
        ``skip`` records bad sites in ``<out stem>.errors.csv``/``.parquet``.
    scaling, scaling_file, bit_depth, scaling_sites, seed
        Intensity scaling, as for ``extract deep`` (see :mod:`stratonet.images.scaling`); ``seed`` draws the
        sites that estimate plate percentiles. A rerun with another scaling is refused.
    overwrite : bool
        Discard existing output instead of resuming (a resume with other settings is refused).
    flush_seconds : float
        Flush a part at least this often, so a kill loses at most this much work.
    on_start : callable, optional
        Called once the output is known to be resumable (or new), before anything is written: the CLI writes its
        run configuration there, so that a refused resume leaves the existing run's files untouched.

    Returns
    -------
    Path
        The feature table; a manifest ``<stem>.manifest.json`` (``pixel.parquet`` -> ``pixel.manifest.json``)
        lies beside it, named as every extractor names its manifest.
    """
    if size < 1:
        raise ConfigError(f"--size must be >= 1, got {size}")
    index_path = None
    if not isinstance(index, pd.DataFrame):
        index_path = index if is_url(index) else Path(index)  # keep a URL intact
        index = read_table(index_path)
    validate_index(index, name=str(index_path or "index"))
    available = channels_of(index)
    channels = list(channels or available)
    missing = [c for c in channels if c not in available]
    if missing:
        raise ConfigError(f"channel(s) {missing} not in the index (has {available})")
    out = require_parquet_output(out, "pixel features")
    require_rows(index, str(index_path or "index"))
    keys = key_columns(index)
    if index.duplicated(keys).any():
        raise StratoNetError(f"index rows are not unique by {keys}; cannot extract per site. Crops of one site "
                             "need an id: re-index with --columns ObjectNumber=<column>")
    from stratonet.runtime.runguard import OutputLock, interrupt_on_sigterm

    with OutputLock(out), interrupt_on_sigterm():
        if overwrite:
            PartitionedWriter(out).discard()
        base = {"size": int(size), "channels": channels, "illum": bool(illum), "percentiles": [low, high],
                "key_columns": keys}
        # before resolve_scaling, which may re-estimate and rewrite the existing run's <stem>.scaling.json
        check_resume_settings(out, {**base, "scaling": requested_scaling(scaling, low, high, scaling_file,
                                                                         scaling_sites, seed)})
        scale = resolve_scaling(scaling, index.to_dict("records"), channels, out, low=low, high=high,
                                scaling_file=scaling_file, bit_depth=bit_depth, n_sites=scaling_sites, seed=seed,
                                illum=illum, log=get_logger(), on_error=on_error)
        signature = {**base, "scaling": scale.identity()}
        writer = PartitionedWriter(out, key_columns=keys, rows_per_part=256, seconds_per_part=flush_seconds,
                                   signature=signature)
        if on_start is not None:
            on_start()
        return _extract_pixel(index, index_path, out, writer, keys, size, channels, illum, on_error, low, high, scale)


def _extract_pixel(index, index_path, out, writer, keys, size, channels, illum, on_error, low, high,
                   scale) -> Path:
    writer.check_metadata(index)  # rows already written keep their metadata: refuse rather than mix (issue 26)
    done = writer.done_keys()
    todo = index[[tuple(map(str, k)) not in done for k in index[keys].itertuples(index=False, name=None)]]
    errors = ErrorLog(errors_path(out))
    meta_cols = metadata_columns(index)
    names = pixel_feature_names(channels, size)
    log = get_logger()
    seen_dtypes: dict = {}
    cpu0 = time.process_time()
    with ResourceMonitor() as mon:
        try:
            for _, row in track(todo.iterrows(), "pixel features", total=len(todo)):
                try:
                    dtype_of: list = []
                    img = load_index_row(row, channels, illum=illum, dtype_of=dtype_of)
                    note_dtypes(seen_dtypes, row, dtype_of)
                    feats = pixel_features(img, size, low=low, high=high, bounds=scale.bounds(row, dtype_of))
                except StratoNetError as exc:
                    if on_error == "fail":
                        raise
                    errors.add(site_name(row), "extract pixel", str(exc), **{k: row[k] for k in keys})
                    continue
                rec = pd.DataFrame([feats], columns=names)
                for c in reversed(meta_cols):
                    rec.insert(0, c, [row[c]])
                writer.write(rec)
                fault_point("pixel.site_done")
        except BaseException:
            writer.flush()  # what is done stays done (an error, Ctrl-C or SIGTERM); a rerun resumes
            raise
        writer.finalize()
    summary = mon.summary()
    cpu_s = time.process_time() - cpu0
    provenance = {"feature_set": "pixel", "size": int(size), "channels": channels, "scaling": scale.describe(),
                  "illumination_corrected": bool(illum and any(c.startswith("Illum_") for c in index.columns))}
    if out.exists():
        stamp_provenance(out, provenance)
    n_done = len(todo) - len(errors)
    manifest = {
        "feature_set": "pixel",
        "output": str(out),
        "index": str(index_path) if index_path else None,
        "config": {"size": size, "channels": channels, "illum": illum, "percentiles": [low, high],
                   "scaling": scale.describe(),
                   "on_error": on_error, "resize": "skimage.transform.resize, bilinear, anti-aliased"},
        "model_card": {"method": "flattened pixels", "untrained": False, "n_features": len(names)},
        "provenance": provenance,
        "packages": package_versions(),
        "device": device_info(),
        "resources": summary,
        "n_sites": int(n_done),
        "n_sites_skipped_as_done": int(len(index) - len(todo)),
        "sites_per_s": n_done / summary["wall_s"] if summary["wall_s"] > 0 else None,
        "core_s_per_site": cpu_s / n_done if n_done else None,
        "process_cpu_s": cpu_s,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mixed_dtype_plates": mixed_dtype_plates(seen_dtypes),
    }
    warn_mixed_dtypes(manifest["mixed_dtype_plates"])
    finish_run(errors, manifest, out.with_name(_stem(out) + ".manifest.json"), wrote_rows=out.exists())
    log.info("pixel features: %d sites, %d errors -> %s", n_done, len(errors), out)
    return out


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".parquet")] if name.lower().endswith(".parquet") else path.stem
