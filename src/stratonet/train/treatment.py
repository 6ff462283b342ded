"""``train treatment``: image-level treatment classification from an image index (as in the CPJUMP1 study).

Sites are decoded once, downsampled to 128 x 128 (grayscale or chosen channels) and kept in memory; a stratified,
group-aware 80/20 split keeps all sites of a well (or plate) on one side. Models: the 3-block CNN, any registered
network (ResNet-18 with an N-channel stem, a StratoNet with a head), or the pixel baselines RF and RBF-SVM.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.index.schema import channels_of, validate_index
from stratonet.core.progress import console
from stratonet.models.precision import resolve_train_precision
from stratonet.core.runinfo import ResourceMonitor, device_info, package_versions, write_json
from stratonet.core.tables import read_table
from stratonet.train.data import TensorImageDataset, channel_stats, preload_index
from stratonet.train.steps import (
    make_optimizer, make_plateau, make_scheduler, pick_device, run_epoch, seed_everything,
)
from stratonet.train.imbalance import IMBALANCE_MODES, BalancedBatchSampler, class_weights, downsample_majority
from stratonet.train.labels import LabelEncoding
from stratonet.train.loop import FitConfig, fit
from stratonet.train.nets import PIXEL_MODELS, build_network, canonical_name
from stratonet.train.outputs import (
    classification_metrics, collapse_check, plot_curves, warn_collapse, write_epochs, write_evaluation,
)
from stratonet.train.split import stratified_split
from stratonet.train.state import STATE_FILE, save_weights, unwrap
from stratonet.train.transforms import treatment_transforms

GROUP_BY = ("well", "plate", "none")


@dataclass
class TreatmentConfig:
    """Options of ``train treatment`` (see the CLI help for each)."""

    index: Path
    out: Path
    label: str = "Metadata_pert_iname"
    model: str = "cnn3"
    channels: list[str] | None = None
    grayscale: bool = True
    size: int = 128
    crop: int = 112
    group_by: str = "well"
    val_fraction: float = 0.2
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adam"
    scheduler: str = "cosine"
    plateau_patience: int = 5
    label_smoothing: float = 0.0
    imbalance: str = "weighted-loss"
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    bf16: bool = True
    precision: str = "auto"
    num_workers: int = 0
    name: str | None = None
    resume: bool = False
    on_error: str = "fail"
    collapse_threshold: float = 0.9
    extra: dict = field(default_factory=dict)

    def run_dir(self) -> Path:
        return Path(self.out) / "train" / (self.name or f"treatment_{canonical_name(self.model)}")


def _groups(index: pd.DataFrame, group_by: str) -> np.ndarray | None:
    if group_by == "none":
        return None
    if group_by == "plate":
        return index["Metadata_Plate"].astype(str).to_numpy()
    if group_by == "well":
        return (index["Metadata_Plate"].astype(str) + "/" + index["Metadata_Well"].astype(str)).to_numpy()
    raise ConfigError(f"unknown --group-by '{group_by}' (choose {', '.join(GROUP_BY)})")


def load_treatment_data(cfg: TreatmentConfig, error_log=None):
    """Read the index, preload the images and encode the labels.

    Returns
    -------
    index (rows that loaded), images (N, C, S, S), integer labels, LabelEncoding, channel list
    """
    index = read_table(cfg.index)
    validate_index(index, str(cfg.index))
    if cfg.label not in index.columns:
        cands = [c for c in index.columns if c.startswith("Metadata_")]
        raise ConfigError(f"{cfg.index}: label column '{cfg.label}' not found (columns: {', '.join(cands)})")
    missing = index[cfg.label].isna()
    if missing.any():
        first = index[missing].iloc[0]
        raise StratoNetError(f"{cfg.index}: {int(missing.sum())} row(s) have no '{cfg.label}', e.g. site "
                             f"{first['Metadata_Plate']}/{first['Metadata_Well']}/{first['Metadata_Site']}")
    available = channels_of(index)
    channels = list(cfg.channels) if cfg.channels else available
    unknown = [c for c in channels if c not in available]
    if unknown:
        raise ConfigError(f"{cfg.index}: channel(s) {unknown} not in the index (has {available})")
    images, ok = preload_index(index, channels, cfg.size, grayscale=cfg.grayscale, on_error=cfg.on_error,
                               error_log=error_log)
    index = index.iloc[ok].reset_index(drop=True)
    enc = LabelEncoding.fit(index[cfg.label], cfg.label)
    if len(enc) < 2:
        raise StratoNetError(f"{cfg.index}: '{cfg.label}' has a single value ({enc.classes[0]}); nothing to classify")
    return index, images, enc.encode(index[cfg.label]), enc, channels


def train_treatment(cfg: TreatmentConfig) -> dict:
    """Run ``train treatment`` and write its outputs under ``<out>/train/<name>/``.

    Returns
    -------
    dict
        The ``metrics.json`` content.
    """
    if cfg.imbalance not in IMBALANCE_MODES:
        raise ConfigError(f"unknown --imbalance '{cfg.imbalance}' (choose {', '.join(IMBALANCE_MODES)})")
    if cfg.crop > cfg.size:
        raise ConfigError(f"--crop {cfg.crop} is larger than --size {cfg.size}")
    from stratonet.core.errorlog import ErrorLog

    run = cfg.run_dir()
    run.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed, cfg.deterministic)
    errors = ErrorLog(run / "errors.csv") if cfg.on_error == "skip" else None
    model_name = canonical_name(cfg.model)
    with ResourceMonitor() as mon:
        index, images, y, enc, channels = load_treatment_data(cfg, errors)
        enc.save(run / "label_encoding.json")
        tr_idx, va_idx = stratified_split(y, _groups(index, cfg.group_by), cfg.val_fraction, cfg.seed)
        n_train_all = len(tr_idx)
        if cfg.imbalance == "downsample":
            tr_idx = tr_idx[downsample_majority(y[tr_idx], cfg.seed)]
        split = index[["Metadata_Plate", "Metadata_Well", "Metadata_Site", cfg.label]].copy()
        split["split"] = "unused"
        split.loc[tr_idx, "split"] = "train"
        split.loc[va_idx, "split"] = "val"
        split.to_csv(run / "split.csv", index=False)
        mean, std = channel_stats(images[tr_idx])
        console.print(f"{len(index)} sites, {len(enc)} classes, {len(tr_idx)} train / {len(va_idx)} val "
                      f"(grouped by {cfg.group_by}); images {images.shape[1]}x{cfg.size}x{cfg.size}")
        if model_name in PIXEL_MODELS:
            result = _train_pixels(cfg, images, y, tr_idx, va_idx)
        else:
            result = _train_network(cfg, run, images, y, tr_idx, va_idx, enc, mean, std)
    y_true, y_pred = y[va_idx], result["y_pred"]
    metrics = classification_metrics(y_true, y_pred, y[tr_idx], enc.classes)
    check = collapse_check(y_pred, len(enc), cfg.collapse_threshold)
    warn_collapse(check, enc.classes, model_name)
    write_evaluation(run, y_true, y_pred, enc.classes, f"{model_name} on '{cfg.label}' (validation)")
    train_counts = np.bincount(y[tr_idx], minlength=len(enc))
    metrics = {
        "model": model_name,
        "provenance": {"model": model_name, "weights": result.get("weights", "trained here"),
                       "trained_on": str(cfg.index), "label": cfg.label, "seed": cfg.seed},
        **metrics,
        "collapsed": check["collapsed"],
        "collapse": {**check, "dominant_class": enc.classes[check["dominant_class"]]
                     if check["dominant_class"] is not None else None, "threshold": cfg.collapse_threshold},
        "train_accuracy": result.get("train_accuracy"),
        "precision": result.get("precision"),  # None for the pixel baselines (sklearn)
        "epochs_run": result.get("epochs_run"),
        "classes": enc.classes,
        "n_train": int(len(tr_idx)), "n_train_before_downsampling": int(n_train_all), "n_val": int(len(va_idx)),
        "train_class_counts": dict(zip(enc.classes, train_counts.tolist())),
        "val_class_counts": dict(zip(enc.classes, np.bincount(y_true, minlength=len(enc)).tolist())),
        "channels": channels, "grayscale": cfg.grayscale, "size": cfg.size, "crop": cfg.crop,
        "group_by": cfg.group_by, "imbalance": cfg.imbalance,
        "normalisation": {"mean": mean, "std": std, "note": "dataset-level statistics of the training split"},
        "selection": "final epoch (no model selection on the validation split)",
        "resources": mon.summary(), "device": device_info(str(result.get("device", "cpu"))),
        "packages": package_versions(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
    }
    write_json(metrics, run / "metrics.json")
    if errors is not None:
        errors.save()
    console.print(f"{model_name}: val accuracy {metrics['accuracy']:.3f} (validation majority share "
                  f"{metrics['majority_baseline']:.3f}, {metrics['majority_class']}), macro F1 "
                  f"{metrics['macro_f1']:.3f} (stratified chance {metrics['stratified_chance_macro_f1']:.3f}) "
                  f"-> {run}", highlight=False)
    return metrics


def _train_pixels(cfg: TreatmentConfig, images: np.ndarray, y: np.ndarray, tr_idx, va_idx) -> dict:
    from stratonet.images.preprocess import center_crop
    from stratonet.train.pixels import fit_predict_pixels

    x = center_crop(images, cfg.crop)
    _, p_tr, p_va = fit_predict_pixels(canonical_name(cfg.model), x[tr_idx], y[tr_idx], x[va_idx],
                                       balanced=cfg.imbalance in ("weighted-loss", "balanced-sampler"), seed=cfg.seed)
    return {"y_pred": p_va, "train_accuracy": float(np.mean(p_tr == y[tr_idx])), "weights": "trained here (sklearn)",
            "device": "cpu"}


def _train_network(cfg, run: Path, images, y, tr_idx, va_idx, enc: LabelEncoding, mean, std) -> dict:
    device = pick_device(cfg.device)
    prec = resolve_train_precision(cfg.precision, device, cfg.bf16)
    use_bf16 = prec.name == "bf16"
    model_name = canonical_name(cfg.model)
    in_chans = images.shape[1]
    model = build_network(model_name, in_chans, len(enc), seed=cfg.seed).to(device)
    t_train, t_val = treatment_transforms(cfg.crop, mean, std)
    train_ds = TensorImageDataset(images[tr_idx], y[tr_idx], t_train)
    val_ds = TensorImageDataset(images[va_idx], y[va_idx], t_val)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.imbalance == "balanced-sampler":
        sampler = BalancedBatchSampler(y[tr_idx], cfg.batch_size, seed=cfg.seed)
        train_loader = DataLoader(train_ds, batch_sampler=sampler, num_workers=cfg.num_workers)
    else:
        sampler = None
        train_loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, generator=gen,
                                  num_workers=cfg.num_workers)
    val_loader = DataLoader(val_ds, batch_size=max(cfg.batch_size, 64), shuffle=False, num_workers=cfg.num_workers)
    weight = class_weights(y[tr_idx], len(enc)).to(device) if cfg.imbalance == "weighted-loss" else None
    criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
    optimizer = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay)
    scheduler = make_scheduler(optimizer, cfg.scheduler, cfg.epochs)
    plateau = make_plateau(optimizer, cfg.plateau_patience) if cfg.plateau_patience > 0 else None
    history = fit(model, train_loader, val_loader, criterion, optimizer, scheduler, plateau,
                  FitConfig(cfg.epochs, device, run / STATE_FILE, resume=cfg.resume, bf16=use_bf16, top5=False),
                  train_sampler=sampler)
    epochs = write_epochs(run, history)
    plot_curves(epochs, run / "curves.png", f"{model_name} on {cfg.label}", ("train_acc", "val_acc"))
    final = run_epoch(model, val_loader, criterion, device, None, bf16=use_bf16, collect=True)
    card = {
        "name": run.name, "in_chans": in_chans, "num_classes": len(enc), "classes": enc.classes,
        "input_size": cfg.crop, "preload_size": cfg.size, "channels": cfg.channels or "all",
        "grayscale": cfg.grayscale, "normalization": {"mean": mean, "std": std, "name": "dataset"},
        "intensity": "each channel divided by its dataset-level 99.9th percentile, then normalised",
        "training_data": str(cfg.index), "label": cfg.label, "epochs": len(history), "seed": cfg.seed,
        "training_precision": prec.as_dict(),
    }
    weights_path = run / "model.safetensors"
    if model_name == "cnn3":
        save_weights(model, weights_path, {"model": model_name, **card})
    else:
        from stratonet.models import save_checkpoint

        card.pop("in_chans")  # filled in from the model
        card.pop("num_classes")
        save_checkpoint(unwrap(model), weights_path, card)
    return {"y_pred": final["y_pred"], "train_accuracy": history[-1]["train_acc"] if history else None,
            "epochs_run": len(history), "weights": weights_path.name, "device": str(device),
            "precision": prec.as_dict()}
