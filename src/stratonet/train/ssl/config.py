"""The settings of one ``train ssl`` run (a frozen dataclass, so a run's configuration is one value)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from stratonet.train.ssl.views import ViewConfig


@dataclass(frozen=True)
class SSLConfig:
    """Settings of :func:`stratonet.train.ssl.trainer.train_ssl` (see ``stratonet train ssl --help``)."""

    index: Path
    out: Path
    name: str | None = None
    model: str = "stratonet18"
    init: str | None = None  # weights to start from (e.g. efficientnet_lite0.in1k); None = from scratch
    channels: tuple[str, ...] | None = None
    crops: str = "cells"
    dna_channel: str = "DNA"
    views: ViewConfig = field(default_factory=ViewConfig)
    batch_size: int = 32
    steps: int | None = None
    minutes: float | None = 30.0
    lr: float = 3e-4
    min_lr: float = 1e-6
    warmup_fraction: float = 0.1
    weight_decay: float = 0.04
    weight_decay_end: float = 0.4
    momentum: float = 0.996
    teacher_temp: float = 0.04
    warmup_teacher_temp: float = 0.04
    student_temp: float = 0.1
    out_dim: int = 4096
    hidden_dim: int = 1024
    bottleneck_dim: int = 128
    head_bn: bool = True
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    resume: bool = False
    checkpoint_minutes: float = 5.0
    illum: bool = True
    max_sites: int | None = None
    progress: bool = True

    def run_dir(self) -> Path:
        """``RUN/train/<name>`` (default name ``ssl_<model>``)."""
        return Path(self.out) / "train" / (self.name or f"ssl_{self.model}")

    def signature(self) -> dict:
        """What a resumed run must share with the run it continues."""
        d = asdict(self)
        for k in ("out", "steps", "minutes", "resume", "checkpoint_minutes", "progress", "device"):
            d.pop(k)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}
