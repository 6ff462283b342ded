"""`stratonet train`: StratoNet classifiers and image-level treatment classifiers."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import on_error_option, start_run


def _channels(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def _common(f):
    """Options shared by both trainers."""
    opts = [
        click.option("--out", "-o", "out", type=click.Path(path_type=Path), required=True,
                     help="Run folder; outputs go to RUN/train/<name>/."),
        click.option("--name", default=None, help="Sub-folder name under RUN/train/ (default: <kind>_<model>)."),
        click.option("--lr", type=float, default=1e-3, show_default=True, help="Learning rate."),
        click.option("--weight-decay", type=float, default=1e-4, show_default=True),
        click.option("--optimizer", type=click.Choice(["adam", "adamw", "sgd"]), default="adam", show_default=True,
                     help="sgd uses momentum (--momentum for train classifier)."),
        click.option("--scheduler", type=click.Choice(["cosine", "step", "none"]), default="cosine",
                     show_default=True, help="Per-epoch LR schedule; ReduceLROnPlateau runs on top of it."),
        click.option("--plateau-patience", type=int, default=5, show_default=True,
                     help="ReduceLROnPlateau patience in epochs on the val loss (0 disables it)."),
        click.option("--label-smoothing", type=float, default=0.0, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--deterministic/--no-deterministic", default=False, show_default=True,
                     help="Seeded, deterministic kernels (slower)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
                     help="Autocast precision: auto = bf16 on CUDA and on CPUs with native bf16 (avx512_bf16 / "
                          "AMX), else fp32. Weights and checkpoints stay fp32; recorded in metrics.json and the "
                          "model card."),
        click.option("--bf16/--no-bf16", default=True, show_default=True,
                     help="Older switch: --no-bf16 makes --precision auto run in fp32."),
        click.option("--num-workers", type=click.IntRange(0), default=0, show_default=True, help="DataLoader worker processes."),
        click.option("--resume/--no-resume", default=False, show_default=True,
                     help="Continue from RUN/train/<name>/last_state.pt up to --epochs."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@click.group("train")
def train() -> None:
    """Train StratoNet/ResNet classifiers, image-level treatment classifiers, or self-supervised backbones (ssl)."""


@train.command("classifier")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--model", default="stratonet18", show_default=True, help="A registered model (stratonet18/50, resnet18/50, ecaresnet50, ...).")
@click.option("--label", default=None, help="Label column when DATA is an index table.")
@click.option("--channels", default=None, help="Comma-separated channels of an index (default: all).")
@click.option("--in-chans", type=int, default=3, show_default=True, help="Stem channels; grayscale images are repeated.")
@click.option("--resize", type=int, default=256, show_default=True, help="Shorter side before cropping.")
@click.option("--crop", type=int, default=224, show_default=True, help="Crop size (random for train, centre for val).")
@click.option("--norm", type=click.Choice(["dataset", "imagenet", "none"]), default="dataset", show_default=True,
              help="Normalisation: training-set mean/std, ImageNet's, or none.")
@click.option("--val-fraction", type=float, default=0.1, show_default=True,
              help="Held-out fraction when DATA has no train/ and val/ folders.")
@click.option("--epochs", type=click.IntRange(1), default=100, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True, help="SGD momentum.")
@click.option("--step-size", type=int, default=30, show_default=True, help="Epochs per step of --scheduler step.")
@click.option("--gamma", type=float, default=0.1, show_default=True, help="LR factor per step.")
@click.option("--init", default=None, metavar="NAME|PATH",
              help="Start from pretrained weights: a weights name (resnet50.tv_in1k; resnet50.imagenet for the first "
                   "registered ImageNet weights of resnet50), a checkpoint or an original .pth. Every tensor that "
                   "matches by name and shape is loaded (StratoNet's ECA gates keep their own initialisation); the "
                   "model card's 'init' and metrics.json record what was loaded.")
@_common
def classifier(data: Path, out: Path, channels: str | None, **kw) -> None:
    """Train a registered model on an ImageFolder tree (one folder per class) or an index with --label.

    The best validation top-1 checkpoint (RUN/train/<name>/best.safetensors, with its model card) feeds
    `stratonet extract deep --weights`. Multi-GPU: `torchrun --nproc_per_node N -m stratonet train classifier ...`.
    """
    from stratonet.train.classifier import ClassifierConfig, train_classifier

    cfg = ClassifierConfig(data=data, out=out, channels=_channels(channels), **kw)
    start_run(cfg.run_dir())
    try:
        train_classifier(cfg)
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


@train.command("treatment")
@click.argument("index", type=click.Path(path_type=Path))
@click.option("--label", default="Metadata_pert_iname", show_default=True, help="Treatment column to predict.")
@click.option("--model", default="cnn3", show_default=True,
              help="cnn3, resnet18 (N-channel stem), stratonet (StratoNet-18 with a head) or any registered model, "
                   "rf or svm (pixel baselines).")
@click.option("--channels", default=None, help="Comma-separated channels (default: all).")
@click.option("--grayscale/--no-grayscale", default=True, show_default=True,
              help="Average the chosen channels into one grayscale image, or keep them as channels.")
@click.option("--size", type=int, default=128, show_default=True, help="Images are downsampled to SIZE x SIZE once.")
@click.option("--crop", type=int, default=112, show_default=True, help="Random (train) / centre (val) crop.")
@click.option("--group-by", type=click.Choice(["well", "plate", "none"]), default="well", show_default=True,
              help="Keep all sites of a well (or plate) on one side of the 80/20 split.")
@click.option("--val-fraction", type=float, default=0.2, show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=30, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--imbalance", type=click.Choice(["weighted-loss", "balanced-sampler", "downsample", "none"]),
              default="weighted-loss", show_default=True,
              help="Class imbalance: inverse-frequency loss weights, class-balanced batches, or downsampling the "
                   "majority class (e.g. DMSO) to the next-largest class.")
@click.option("--collapse-threshold", type=float, default=0.9, show_default=True,
              help="Warn (and set collapsed=true) when one class gets this share of validation predictions.")
@on_error_option
@_common
def treatment(index: Path, out: Path, channels: str | None, **kw) -> None:
    """Image-level treatment classification (3-block CNN, ResNet-18, StratoNet head, pixel RF/SVM)."""
    from stratonet.train.treatment import TreatmentConfig, train_treatment

    cfg = TreatmentConfig(index=index, out=out, channels=_channels(channels), **kw)
    start_run(cfg.run_dir())
    train_treatment(cfg)


@train.command("ssl")
@click.argument("index", type=click.Path(path_type=Path))
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), required=True,
              help="Run folder; outputs go to RUN/train/<name>/ (teacher.safetensors + teacher.json, metrics.json).")
@click.option("--name", default=None, help="Sub-folder name under RUN/train/ (default: ssl_<model>).")
@click.option("--model", default="stratonet18", show_default=True,
              help="Backbone: stratonet18, stratonet50, efficientnet_lite0 or any registered model.")
@click.option("--init", default=None, metavar="NAME|PATH",
              help="Start from these weights (e.g. efficientnet_lite0.in1k, bundled) instead of from scratch.")
@click.option("--channels", default=None, help="Comma-separated channels (default: all); each view holds one.")
@click.option("--crops", type=click.Choice(["cells", "tiles"]), default="cells", show_default=True,
              help="Views around nucleus centres (found on --dna-channel) or at uniform points of the fields.")
@click.option("--dna-channel", default="DNA", show_default=True, help="Channel the nucleus centres are found on.")
@click.option("--region", type=click.IntRange(16), default=120, show_default=True,
              help="Native-pixel side a global view covers at most (global views: 0.6-1.0 of it).")
@click.option("--view-size", type=click.IntRange(16), default=96, show_default=True,
              help="Global view side fed to the network (also the checkpoint's input size).")
@click.option("--local-size", type=click.IntRange(8), default=48, show_default=True, help="Local view side.")
@click.option("--local-views", type=click.IntRange(0), default=4, show_default=True, help="Local views per sample.")
@click.option("--batch-size", type=click.IntRange(2), default=32, show_default=True, help="Samples per step.")
@click.option("--minutes", type=click.FloatRange(min=0.05), default=30.0, show_default=True,
              help="Time budget: the step count (and so every schedule) is fitted to it after 2 timed steps.")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="Fixed number of steps instead of fitting them to --minutes (which still stops the run).")
@click.option("--lr", type=float, default=3e-4, show_default=True, help="Peak AdamW learning rate (cosine).")
@click.option("--momentum", type=float, default=0.996, show_default=True,
              help="Teacher EMA momentum at the start (cosine to 1).")
@click.option("--teacher-temp", type=float, default=0.04, show_default=True)
@click.option("--student-temp", type=float, default=0.1, show_default=True)
@click.option("--out-dim", type=click.IntRange(2), default=4096, show_default=True, help="DINO head prototypes.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="Autocast: auto = bf16 on CUDA and on CPUs with native bf16, else fp32.")
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True,
              help="Save the state and the teacher at least this often.")
@click.option("--max-sites", type=click.IntRange(1), default=None, help="Read only the first N sites (tests).")
@click.option("--no-illum", is_flag=True, default=False, help="Ignore Illum_<Channel> functions in the index.")
@click.option("--resume/--no-resume", default=False, show_default=True,
              help="Continue RUN/train/<name>/last_state.pt (same settings; the time spent so far counts).")
def ssl(index: Path, out: Path, channels: str | None, region: int, view_size: int, local_size: int,
        local_views: int, no_illum: bool, teacher_temp: float, **kw) -> None:
    """Self-supervised DINO training on INDEX's own images (no label column is read).

    Views are single-stain crops around cells (or tiles): random resized crops, flips, 90-degree rotations,
    intensity gain/offset, blur and noise. The teacher network is saved with a model card that records the
    training data (plates, sites, cells), the views, the loss curve and the time spent; feed it to
    `stratonet extract deep --weights RUN/train/<name>/teacher`.
    """
    from stratonet.train.ssl.config import SSLConfig
    from stratonet.train.ssl.trainer import train_ssl
    from stratonet.train.ssl.views import ViewConfig

    views = ViewConfig(region=region, global_size=view_size, local_size=local_size, n_local=local_views)
    cfg = SSLConfig(index=index, out=out, channels=tuple(_channels(channels)) if channels else None, views=views,
                    illum=not no_illum, teacher_temp=teacher_temp, warmup_teacher_temp=teacher_temp,
                    **kw)
    start_run(cfg.run_dir())
    train_ssl(cfg)
