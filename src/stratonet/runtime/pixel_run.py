"""How ``extract pixel`` runs: the output lock, the resume check, the loop over the resumable writer, and the
manifest through :func:`~stratonet.runtime.runfinish.finish_run`. The per-site compute is
:mod:`stratonet.extract.pixel`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pandas as pd

from stratonet.core.errors import StratoNetError
from stratonet.core.progress import get_logger, track
from stratonet.core.remote import is_url
from stratonet.core.runinfo import ResourceMonitor, device_info, package_versions
from stratonet.core.tables import metadata_columns, read_table, stamp_provenance
from stratonet.extract.pixel import (PixelConfig, pixel_config_record, pixel_feature_names, pixel_provenance,
                                     pixel_site)
from stratonet.images.scaling import mixed_dtype_plates, resolve_scaling, warn_mixed_dtypes
from stratonet.index.schema import site_name, validate_index
from stratonet.runtime.resumable import ErrorLog, PartitionedWriter, check_resume_settings, row_key_columns
from stratonet.runtime.runfinish import errors_path, finish_run, require_parquet_output, require_rows
from stratonet.runtime.runguard import fault_point
from stratonet.runtime.spec import RunSpec, split_options


def key_columns(index: pd.DataFrame) -> list[str]:
    """Columns identifying a unit of work: plate, well, site, plus a cell id for single-cell stacks."""
    return row_key_columns(index)


def extract_pixel(index: pd.DataFrame | str | Path, out: str | Path, cfg: PixelConfig | None = None,
                  run: RunSpec | None = None, on_start: Callable[[], object] | None = None, **options) -> Path:
    """Write the pixel-baseline feature table (resumable).

    Parameters
    ----------
    index : DataFrame or path
        Image index.
    out : path
        Output Parquet; parts go to ``<out>.parts`` and a rerun skips sites already written.
    cfg : PixelConfig
        Size, channels, intensity scaling (as for ``extract deep``, see :mod:`stratonet.images.scaling`; a rerun
        with another scaling is refused) and on_error.
    run : RunSpec
        ``overwrite`` (discard existing output instead of resuming) and ``flush_seconds`` (flush a part at least
        this often, so a kill loses at most this much work).
    on_start : callable, optional
        Called once the output is known to be resumable (or new), before anything is written: the CLI writes its
        run configuration there, so that a refused resume leaves the existing run's files untouched.
    **options
        Instead of ``cfg`` and ``run``: their flat option names (``size=``, ``channels=``, ``illum=``,
        ``on_error=``, ``low=``, ``high=``, ``scaling=``, ``scaling_file=``, ``bit_depth=``, ``scaling_sites=``,
        ``seed=``, ``overwrite=``, ``flush_seconds=``).

    Returns
    -------
    Path
        The feature table; a manifest ``<stem>.manifest.json`` (``pixel.parquet`` -> ``pixel.manifest.json``)
        lies beside it, named as every extractor names its manifest.
    """
    if options:
        opts, run = split_options(options)
        cfg = PixelConfig.from_options(**opts)
    cfg, run = cfg or PixelConfig(), run or RunSpec()
    cfg.check()
    index_path = None
    if not isinstance(index, pd.DataFrame):
        index_path = index if is_url(index) else Path(index)  # keep a URL intact
        index = read_table(index_path)
    validate_index(index, name=str(index_path or "index"))
    channels = cfg.resolve_channels(index)
    out = require_parquet_output(out, "pixel features")
    require_rows(index, str(index_path or "index"))
    keys = key_columns(index)
    if index.duplicated(keys).any():
        raise StratoNetError(f"index rows are not unique by {keys}; cannot extract per site. Crops of one site "
                             "need an id: re-index with --columns ObjectNumber=<column>")
    from stratonet.runtime.runguard import OutputLock, interrupt_on_sigterm

    with OutputLock(out), interrupt_on_sigterm():
        if run.overwrite:
            PartitionedWriter(out).discard()
        base = cfg.base_signature(channels, keys)
        # before resolve_scaling, which may re-estimate and rewrite the existing run's <stem>.scaling.json
        check_resume_settings(out, {**base, "scaling": cfg.scaling.requested()})
        scale = resolve_scaling(cfg.scaling, index.to_dict("records"), channels, out, log=get_logger(),
                                on_error=cfg.on_error)
        writer = PartitionedWriter(out, key_columns=keys, rows_per_part=256, seconds_per_part=run.flush_seconds,
                                   signature={**base, "scaling": scale.identity()})
        if on_start is not None:
            on_start()
        return _run_pixel(index, index_path, out, writer, cfg, channels, scale)


def _run_pixel(index: pd.DataFrame, index_path, out: Path, writer: PartitionedWriter, cfg: PixelConfig,
               channels: list[str], scale) -> Path:
    """Every site not yet done, through the resumable writer; then the provenance and the manifest."""
    writer.check_metadata(index)  # rows already written keep their metadata: refuse rather than mix (issue 26)
    keys = writer.key_columns
    done = writer.done_keys()
    todo = index[[tuple(map(str, k)) not in done for k in index[keys].itertuples(index=False, name=None)]]
    errors = ErrorLog(errors_path(out))
    meta_cols = metadata_columns(index)
    names = pixel_feature_names(channels, cfg.size)
    seen_dtypes: dict = {}
    cpu0 = time.process_time()
    with ResourceMonitor() as mon:
        try:
            for _, row in track(todo.iterrows(), "pixel features", total=len(todo)):
                try:
                    rec = pixel_site(row, cfg, channels, scale, names, meta_cols, seen_dtypes)
                except StratoNetError as exc:
                    if cfg.on_error == "fail":
                        raise
                    errors.add(site_name(row), "extract pixel", str(exc), **{k: row[k] for k in keys})
                    continue
                writer.write(rec)
                fault_point("pixel.site_done")
        except BaseException:
            writer.flush()  # what is done stays done (an error, Ctrl-C or SIGTERM); a rerun resumes
            raise
        writer.finalize()
    provenance = pixel_provenance(cfg, channels, scale, index)
    if out.exists():
        stamp_provenance(out, provenance)
    manifest = _manifest(index, index_path, out, cfg, channels, scale, provenance, mon.summary(),
                         time.process_time() - cpu0, n_todo=len(todo), n_errors=len(errors), n_names=len(names))
    manifest["mixed_dtype_plates"] = mixed_dtype_plates(seen_dtypes)
    warn_mixed_dtypes(manifest["mixed_dtype_plates"])
    finish_run(errors, manifest, out.with_name(_stem(out) + ".manifest.json"), wrote_rows=out.exists())
    get_logger().info("pixel features: %d sites, %d errors -> %s", manifest["n_sites"], len(errors), out)
    return out


def _manifest(index, index_path, out: Path, cfg: PixelConfig, channels, scale, provenance: dict, summary: dict,
              cpu_s: float, n_todo: int, n_errors: int, n_names: int) -> dict:
    """The pixel manifest (before ``mixed_dtype_plates`` and the error fields of ``finish_run``)."""
    n_done = n_todo - n_errors
    return {
        "feature_set": "pixel",
        "output": str(out),
        "index": str(index_path) if index_path else None,
        "config": pixel_config_record(cfg, channels, scale),
        "model_card": {"method": "flattened pixels", "untrained": False, "n_features": n_names},
        "provenance": provenance,
        "packages": package_versions(),
        "device": device_info(),
        "resources": summary,
        "n_sites": int(n_done),
        "n_sites_skipped_as_done": int(len(index) - n_todo),
        "sites_per_s": n_done / summary["wall_s"] if summary["wall_s"] > 0 else None,
        "core_s_per_site": cpu_s / n_done if n_done else None,
        "process_cpu_s": cpu_s,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".parquet")] if name.lower().endswith(".parquet") else path.stem
