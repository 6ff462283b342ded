"""``train classifier``: train a registered model (StratoNet, ResNet, ECA-ResNet) on ImageNet-style data.

Data is an ImageFolder tree (one folder per class; ``train/`` and ``val/`` sub-trees are used as given, otherwise
a stratified split is drawn) or an image index with a label column. The best validation top-1 checkpoint is saved
with its model card and feeds ``stratonet extract deep --weights``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from stratonet.core.errors import ConfigError, InputFileError
from stratonet.core.progress import console
from stratonet.models.precision import resolve_train_precision
from stratonet.core.runinfo import ResourceMonitor, device_info, package_versions, write_json
from stratonet.train.data import ImageFolderDataset, IndexImageDataset, estimate_stats
from stratonet.train.steps import (
    Dist, init_distributed, make_optimizer, make_plateau, make_scheduler, run_epoch, seed_everything,
)
from stratonet.train.labels import LabelEncoding
from stratonet.train.loop import FitConfig, FitHooks, fit
from stratonet.train.outputs import (
    classification_metrics, collapse_check, plot_curves, warn_collapse, write_epochs, write_evaluation,
)
from stratonet.train.split import stratified_split
from stratonet.train.state import STATE_FILE, unwrap
from stratonet.train.transforms import classifier_transforms

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHECKPOINT = "best.safetensors"  # + best.json, the model card


@dataclass
class ClassifierConfig:
    """Options of ``train classifier`` (see the CLI help for each)."""

    data: Path
    out: Path
    model: str = "stratonet18"
    label: str | None = None
    channels: list[str] | None = None
    in_chans: int = 3
    resize: int = 256
    crop: int = 224
    norm: str = "dataset"
    val_fraction: float = 0.1
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    optimizer: str = "adam"
    scheduler: str = "cosine"
    step_size: int = 30
    gamma: float = 0.1
    plateau_patience: int = 5
    label_smoothing: float = 0.0
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    bf16: bool = True
    precision: str = "auto"
    num_workers: int = 0
    resume: bool = False
    name: str | None = None
    init: str | None = None  # pretrained weights to start from (name or path); None: seeded initialisation

    def run_dir(self) -> Path:
        return Path(self.out) / "train" / (self.name or f"classifier_{self.model}")


def _datasets(cfg: ClassifierConfig):
    """(train, val) datasets without transforms, the class list, and a description of the data."""
    data = Path(cfg.data)
    if not data.exists():
        raise InputFileError(str(data), "not found (expected an ImageFolder tree or an index table)")
    if data.is_dir() and not data.name.endswith(".parquet"):
        if (data / "train").is_dir() and (data / "val").is_dir():
            train = ImageFolderDataset(data / "train", channels=cfg.in_chans)
            val = ImageFolderDataset(data / "val", classes=train.classes, channels=cfg.in_chans)
            return train, val, train.classes, f"ImageFolder {data} (train/ and val/)"
        full = ImageFolderDataset(data, channels=cfg.in_chans)
        tr, va = stratified_split(full.targets, None, cfg.val_fraction, cfg.seed)
        vfull = ImageFolderDataset(data, channels=cfg.in_chans)
        return _Sub(full, tr), _Sub(vfull, va), full.classes, f"ImageFolder {data} ({cfg.val_fraction:.0%} held out)"
    from stratonet.index.schema import channels_of, validate_index
    from stratonet.core.tables import read_table

    index = read_table(data)
    validate_index(index, str(data))
    if not cfg.label or cfg.label not in index.columns:
        raise ConfigError(f"{data}: an index needs --label naming one of its columns (got '{cfg.label}')")
    channels = list(cfg.channels) if cfg.channels else channels_of(index)
    if len(channels) != cfg.in_chans and not (len(channels) == 1 and cfg.in_chans > 1):
        raise ConfigError(f"{len(channels)} channel(s) {channels} for a {cfg.in_chans}-channel stem "
                          "(set --in-chans or --channels)")
    enc = LabelEncoding.fit(index[cfg.label], cfg.label)
    y = enc.encode(index[cfg.label])
    groups = (index["Metadata_Plate"].astype(str) + "/" + index["Metadata_Well"].astype(str)).to_numpy()
    tr, va = stratified_split(y, groups, cfg.val_fraction, cfg.seed)
    full = IndexImageDataset(index, channels, y, repeat_to=cfg.in_chans)
    vfull = IndexImageDataset(index, channels, y, repeat_to=cfg.in_chans)
    return _Sub(full, tr), _Sub(vfull, va), enc.classes, f"index {data}, label {cfg.label}"


class _Sub(Subset):
    """A subset that keeps ``targets``, ``load`` and a settable ``transform`` of its base dataset."""

    def __init__(self, dataset, indices):
        super().__init__(dataset, list(map(int, indices)))
        self.targets = np.asarray(dataset.targets)[self.indices]

    def load(self, i: int):
        return self.dataset.load(self.indices[i])

    @property
    def transform(self):
        return self.dataset.transform

    @transform.setter
    def transform(self, t):
        self.dataset.transform = t


def train_classifier(cfg: ClassifierConfig) -> dict | None:
    """Run ``train classifier``; outputs under ``<out>/train/<name>/`` (written by the main process only).

    Returns
    -------
    dict or None
        The ``metrics.json`` content (None on non-main DDP ranks).
    """
    from stratonet.models import save_checkpoint

    d, device = init_distributed(cfg.device)
    seed_everything(cfg.seed + d.rank, cfg.deterministic)
    prec = resolve_train_precision(cfg.precision, device, cfg.bf16)
    use_bf16 = prec.name == "bf16"
    run = cfg.run_dir()
    if d.main:
        run.mkdir(parents=True, exist_ok=True)
    with ResourceMonitor() as mon:
        train_ds, val_ds, classes, described = _datasets(cfg)
        mean, std = _normalisation(cfg, train_ds)
        described_channels = (f"{cfg.in_chans}-channel input, each image rescaled to [0, 1] (8-bit / 255, else "
                              "0.1-99.9 percentiles); grayscale repeated to the stem")
        t_train, t_val = classifier_transforms(cfg.resize, cfg.crop, mean, std)
        train_ds.transform, val_ds.transform = t_train, t_val
        if d.main:
            console.print(f"{described}: {len(classes)} classes, {len(train_ds)} train / {len(val_ds)} val images")
        model, init_report = _model(cfg, len(classes), device, d)
        train_loader, sampler = _loader(train_ds, cfg, d, shuffle=True)
        val_loader, _ = _loader(val_ds, cfg, d, shuffle=False)
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        optimizer = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
        scheduler = make_scheduler(optimizer, cfg.scheduler, cfg.epochs, cfg.step_size, cfg.gamma)
        plateau = make_plateau(optimizer, cfg.plateau_patience) if cfg.plateau_patience > 0 else None
        best = {"top1": -1.0, "epoch": 0}
        card = {
            "name": f"{run.name}-best", "classes": classes, "input_size": cfg.crop, "resize": cfg.resize,
            "normalization": {"mean": mean, "std": std, "name": cfg.norm},
            "channel_handling": described_channels,
            "training_data": described, "seed": cfg.seed, "optimizer": cfg.optimizer, "lr": cfg.lr,
            "scheduler": cfg.scheduler, "label_smoothing": cfg.label_smoothing,
            "training_precision": prec.as_dict(),
        }

        def on_epoch(epoch: int, row: dict) -> None:
            if row["val_top1"] > best["top1"]:
                best.update(top1=row["val_top1"], top5=row["val_top5"], epoch=epoch)
                save_checkpoint(unwrap(model), run / CHECKPOINT,
                                {**card, "epoch": epoch, "val_top1": row["val_top1"], "val_top5": row["val_top5"]})

        history = fit(model, train_loader, val_loader, criterion, optimizer, scheduler, plateau,
                      FitConfig(cfg.epochs, device, run / STATE_FILE, resume=cfg.resume, bf16=use_bf16, d=d),
                      train_sampler=sampler,
                      hooks=FitHooks(on_epoch=on_epoch, extra_state=lambda: {"best": dict(best)},
                                     on_resume=lambda extra: best.update(extra.get("best", {}))))
    if not d.main:
        return None
    epochs = write_epochs(run, history)
    plot_curves(epochs, run / "curves.png", f"{cfg.model} on {described}", ("train_top1", "val_top1"))
    # evaluate the saved best checkpoint on the whole validation set (single process)
    from stratonet.models import load_checkpoint

    best_model, best_card = load_checkpoint(run / CHECKPOINT)
    best_model = best_model.to(device)
    full_val = DataLoader(val_ds, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.num_workers)
    final = run_epoch(best_model, full_val, criterion, device, None, bf16=use_bf16, collect=True)
    metrics = classification_metrics(final["y_true"], final["y_pred"], train_ds.targets, classes)
    check = collapse_check(final["y_pred"], len(classes))
    warn_collapse(check, classes, cfg.model)
    write_evaluation(run, final["y_true"], final["y_pred"], classes, f"{cfg.model} best checkpoint (validation)")
    metrics = {
        "model": cfg.model,
        "provenance": {"model": cfg.model, "weights": CHECKPOINT, "trained_on": described, "seed": cfg.seed,
                       "init": init_report or f"untrained (seed {cfg.seed})"},
        **metrics, "top1": final["top1"], "top5": final["top5"], "val_loss": final["loss"],
        "precision": prec.as_dict(),
        "chance": 1.0 / len(classes), "collapsed": check["collapsed"], "collapse": check,
        "best_epoch": best["epoch"], "epochs_run": len(history), "checkpoint": str(run / CHECKPOINT),
        "selection": "checkpoint with the best validation top-1 (selected on the same validation set)",
        "classes": classes, "n_train": len(train_ds), "n_val": len(val_ds), "world_size": d.world,
        "resources": mon.summary(), "device": device_info(str(device)), "packages": package_versions(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
    }
    write_json(metrics, run / "metrics.json")
    console.print(f"{cfg.model}: best val top-1 {final['top1']:.3f} (epoch {best['epoch']}), top-5 "
                  f"{final['top5']:.3f}, chance {1 / len(classes):.3f}; checkpoint {run / CHECKPOINT}")
    return metrics


def _normalisation(cfg: ClassifierConfig, train_ds) -> tuple[list[float], list[float]]:
    """Per-channel mean and std for ``--norm`` (dataset statistics of the training split, ImageNet's, or none)."""
    if cfg.norm == "imagenet":
        if cfg.in_chans != 3:
            raise ConfigError("--norm imagenet needs --in-chans 3")
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    if cfg.norm == "dataset":
        return estimate_stats(train_ds, 256, cfg.seed)
    if cfg.norm == "none":
        return [0.0] * cfg.in_chans, [1.0] * cfg.in_chans
    raise ConfigError(f"unknown --norm '{cfg.norm}' (dataset, imagenet, none)")


def _model(cfg: ClassifierConfig, n_classes: int, device, d: Dist):
    """The network on ``device`` (wrapped for DDP when distributed) and its ``--init`` report (or None)."""
    from stratonet.train.nets import build_network

    model = build_network(cfg.model, cfg.in_chans, n_classes, seed=cfg.seed, init=cfg.init).to(device)
    init_report = getattr(model, "init_report", None)  # also written into the card by save_checkpoint
    if init_report and d.main:
        console.print(init_summary(init_report), highlight=False)
    if d.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model, init_report


def init_summary(report: dict) -> str:
    """One line on what ``--init`` loaded: tensors and parameters, and how many tensors kept their own init."""
    kept = report.get("kept_own_init") or []
    gates = sum(1 for k in kept if ".attn." in k)  # the ECA gates (absent from a plain ResNet)
    return (f"init: {report['loaded_tensors']} tensors ({report['loaded_parameters']:,} of "
            f"{report['target_parameters']:,} parameters) loaded from {report.get('source')}; "
            f"{len(kept)} kept their own initialisation{f' ({gates} ECA gates)' if gates else ''}, "
            f"{len(report.get('shape_mismatch') or [])} differ in shape (e.g. the classification head)")


def _loader(ds, cfg: ClassifierConfig, d: Dist, shuffle: bool):
    sampler = None
    if d.enabled:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(ds, num_replicas=d.world, rank=d.rank, shuffle=shuffle, seed=cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                        num_workers=cfg.num_workers, generator=gen if shuffle else None,
                        pin_memory=torch.cuda.is_available(), drop_last=False,
                        persistent_workers=cfg.num_workers > 0)
    return loader, sampler
