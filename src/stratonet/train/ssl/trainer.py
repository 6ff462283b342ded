"""`train ssl`: DINO self-distillation of a registered backbone on the index's own images (no labels read).

The student (backbone + :class:`DINOHead`) learns by gradient; the teacher is its exponential moving average and
is the network that is saved (``RUN/train/<name>/teacher.safetensors`` + model card), ready for
``extract deep --weights``. The embedding trained is the one extraction reads: the backbone's pooled taps,
concatenated.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn

from stratonet.core.errors import ConfigError
from stratonet.core.progress import console, get_logger
from stratonet.train.ssl.config import SSLConfig
from stratonet.train.ssl.dino import (DINOHead, DINOLoss, cosine_schedule, ema_buffers, ema_update,
                                      freeze_running_stats, teacher_temperature)
from stratonet.train.ssl.views import batch_views, multi_crop

STATE_FILE = "last_state.pt"
CALIBRATION_STEPS = 2  # with a time budget, the step count is first planned after this many timed steps
REPLAN_AT = (0.1, 0.2, 0.3, 0.4, 0.5)  # ... and again, from the mean step time, as these shares of it are spent


class MultiView(nn.Module):
    """``views -> [net(v) for v in views]`` as one forward call, so DistributedDataParallel sees one forward per
    backward."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.net(v) for v in views]


class Student(nn.Module):
    """Backbone (pooled taps, concatenated) + projection head, on ``(B, 1, S, S)`` images in [0, 1]."""

    def __init__(self, backbone: nn.Module, head: DINOHead, mean, std):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.in_chans = int(backbone.in_chans)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)[:, : self.in_chans])
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)[:, : self.in_chans])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.expand(-1, self.in_chans, -1, -1) - self.mean) / self.std  # as extract deep feeds the network
        return self.head(self.backbone(x.contiguous(memory_format=torch.channels_last)).float())


def build_backbone(cfg: SSLConfig) -> tuple[nn.Module, str | None]:
    """The backbone with its default taps, from scratch (seeded) or from ``cfg.init``; and the init's label."""
    from stratonet.extract.deep.run import build_model

    if cfg.init:
        net, card, label = build_model(None, cfg.init, cfg.seed)
        if card["model"] != cfg.model:
            raise ConfigError(f"--init {cfg.init} holds {card['model']}, not --model {cfg.model}")
        return net.train(), f"{label}, {card.get('source') or card.get('imported_from') or 'checkpoint'}"
    net, _, _ = build_model(cfg.model, None, cfg.seed)
    return net.train(), None


def _param_groups(model: nn.Module) -> list[dict]:
    """Weight decay on weights only; biases and normalisation parameters are not decayed (as DINO does)."""
    decay, plain = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else plain).append(p)
    return [{"params": decay}, {"params": plain, "weight_decay": 0.0}]


class Run:
    """One training run's objects and progress (student, teacher, loss, optimiser, step, history)."""

    def __init__(self, cfg: SSLConfig, pool, device: torch.device, dist=None):
        from stratonet.models.checkpoint import model_card
        from stratonet.train.steps import Dist

        self.cfg, self.pool, self.device = cfg, pool, device
        self.dist = dist or Dist()
        torch.manual_seed(cfg.seed)
        backbone, self.init_label = build_backbone(cfg)
        norm = model_card(backbone)["normalization"]
        dim = sum(f["channels"] for f in backbone.feature_info)
        head = DINOHead(dim, cfg.out_dim, cfg.hidden_dim, cfg.bottleneck_dim, cfg.head_bn)
        self.student = Student(backbone, head, norm["mean"], norm["std"]).to(device)
        self.student = self.student.to(memory_format=torch.channels_last)
        # a fresh network, not a deepcopy: the tap hooks must fill the teacher's own pooled outputs
        teacher_backbone, _ = build_backbone(cfg)
        teacher_head = DINOHead(dim, cfg.out_dim, cfg.hidden_dim, cfg.bottleneck_dim, cfg.head_bn)
        self.teacher = Student(teacher_backbone, teacher_head, norm["mean"], norm["std"]).to(device)
        self.teacher = self.teacher.to(memory_format=torch.channels_last)
        self.teacher.load_state_dict(self.student.state_dict())
        freeze_running_stats(self.teacher)  # batch-normalised; running statistics: ema_buffers of the student's
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.loss = DINOLoss(cfg.out_dim, cfg.student_temp).to(device)
        self.opt = torch.optim.AdamW(_param_groups(self.student), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.student_views = self._wrap(MultiView(self.student))
        self.gen = torch.Generator().manual_seed(self._view_seed(0))
        self.step, self.total, self.seconds = 0, cfg.steps, 0.0
        self.history: list[dict] = []
        self.stopped_by = None
        self.precision = None  # the resolved Precision, set by train_ssl
        self.plans: list[list[int]] = []  # [step, planned total] each time the plan was set

    def _view_seed(self, step: int) -> int:
        """Seed of this process's view generator: other views per process (the main one: ``cfg.seed``)."""
        return self.cfg.seed + 1_000_003 * self.dist.rank + (step if self.dist.rank else 0)

    def _wrap(self, views: MultiView) -> nn.Module:
        """DistributedDataParallel under ``torchrun``, else as is. BatchNorm stays per process (no SyncBatchNorm:
        it would replace the tapped modules)."""
        if not self.dist.enabled:
            return views
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(views, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def state(self) -> dict:
        return {"student": self.student.state_dict(), "teacher": self.teacher.state_dict(),
                "center": self.loss.center.detach().cpu(), "optimizer": self.opt.state_dict(),
                "generator": self.gen.get_state(), "step": self.step, "total": self.total,
                "seconds": self.seconds, "history": self.history, "plans": self.plans,
                "signature": json.loads(json.dumps(self.cfg.signature(), default=str))}

    def load(self, path: Path) -> None:
        st = check_resume(self.cfg, path)
        self.student.load_state_dict(st["student"])
        self.teacher.load_state_dict(st["teacher"])
        self.loss.center.copy_(st["center"])
        self.opt.load_state_dict(st["optimizer"])
        if self.dist.main:
            self.gen.set_state(st["generator"])
        else:  # only the main process's generator is saved: the others continue from a fresh, distinct seed
            self.gen.manual_seed(self._view_seed(int(st["step"])))
        self.step, self.seconds, self.history = int(st["step"]), float(st["seconds"]), list(st["history"])
        self.plans = list(st.get("plans", []))
        self.total = self.cfg.steps or st["total"]

    def schedules(self) -> dict:
        """lr, weight decay, teacher momentum and temperature at the current step (cosine, DINO's defaults)."""
        c, k = self.cfg, self.step
        total = self.total or 10 ** 6  # before the time budget fixed it: warm-up keeps the first steps tiny
        warm = int(c.warmup_fraction * total)
        return {"lr": cosine_schedule(c.lr, c.min_lr, k, total, warmup=warm),
                "weight_decay": cosine_schedule(c.weight_decay, c.weight_decay_end, k, total),
                "momentum": cosine_schedule(c.momentum, 1.0, k, total),
                "teacher_temp": teacher_temperature(k, total, c.warmup_teacher_temp, c.teacher_temp, warm * 3)}

    def train_step(self, autocast) -> dict:
        """One optimisation step on a fresh batch of multi-crop views; returns the step's history row."""
        c = self.cfg
        sch = self.schedules()
        for i, group in enumerate(self.opt.param_groups):
            group["lr"] = sch["lr"]
            if i == 0:
                group["weight_decay"] = sch["weight_decay"]
        samples = [multi_crop(*self.pool.draw(self.gen), c.views, self.gen) for _ in range(c.batch_size)]
        views = [v.to(self.device, non_blocking=True) for v in batch_views(samples)]
        with autocast():
            with torch.no_grad():
                t_out = [self.teacher(v) for v in views[: c.views.n_global]]
            s_out = self.student_views(views)
            loss = self.loss(s_out, t_out, sch["teacher_temp"])
        if not torch.isfinite(loss):
            raise ConfigError(f"train ssl: the loss became {float(loss)} at step {self.step}; lower --lr")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.student.parameters(), 3.0)
        self.opt.step()
        ema_update(self.teacher, self.student, sch["momentum"])
        ema_buffers(self.teacher, self.student, sch["momentum"])
        self.step += 1
        return {"step": self.step, "loss": float(loss.detach()), **{k: round(v, 8) for k, v in sch.items()}}


def check_resume(cfg: SSLConfig, path: Path) -> dict:
    """The saved state of ``path`` if ``cfg`` may continue it (same settings), else ConfigError naming them."""
    from stratonet.train.state import read_state

    st = read_state(path)
    sig = json.loads(json.dumps(cfg.signature(), default=str))
    if st["signature"] != sig:
        diff = sorted(k for k in set(sig) | set(st["signature"]) if sig.get(k) != st["signature"].get(k))
        raise ConfigError(f"{path} was written with other settings ({', '.join(diff)}); resume with the same "
                          "ones or start another --name")
    return st


def save_outputs(run: Run, run_dir: Path) -> Path:
    """Training state (for resume), the teacher checkpoint with its model card, and metrics.json."""
    from stratonet.models.checkpoint import save_checkpoint

    tmp = run_dir / (STATE_FILE + ".tmp")
    torch.save(run.state(), tmp)
    tmp.replace(run_dir / STATE_FILE)
    card = model_card_fields(run)
    path = save_checkpoint(run.teacher.backbone, run_dir / "teacher", card)
    (run_dir / "metrics.json").write_text(json.dumps({"model": run.cfg.model, "history": run.history,
                                                      **card["training"]}, indent=2,
                                                     default=str))
    if run.history:
        from stratonet.train.outputs import plot_ssl_curves

        d = card["training_data"]
        plot_ssl_curves(run.history, run_dir / "curves.png",
                        f"train ssl {run.cfg.model} ({card['training']['init']}) on {d['n_sites']} sites")
    return path


def model_card_fields(run: Run) -> dict:
    """The card's training record: data, views, method, steps, time and a loss curve of at most 200 points."""
    c = run.cfg
    hist = run.history
    stride = max(1, len(hist) // 200)
    curve = [[h["step"], round(h["loss"], 5)] for h in hist[::stride]] + ([[hist[-1]["step"], round(
        hist[-1]["loss"], 5)]] if hist and (len(hist) - 1) % stride else [])
    return {
        "name": f"ssl-{c.model}-{Path(c.index).stem}",
        "input_size": c.views.global_size,
        "pixel_scale": "native",  # views are crops at about the images' own pixel size: extract fields unresized
        "training_data": {**run.pool.describe(), "index": str(c.index),
                          "scaling": "per image, 0.1-99.9 percentiles"},
        "epochs": None,
        "seed": c.seed,
        "training": {
            "method": ("DINO self-distillation (Caron et al. 2021), teacher = EMA of the student (weights and "
                       "BatchNorm running statistics; the teacher normalises by batch statistics), "
                       f"BatchNorm in the head: {c.head_bn}; saved: teacher"),
            "init": run.init_label or f"from scratch (seed {c.seed})",
            "precision": run.precision.as_dict() if run.precision else None,
            "views": c.views.to_dict(), "batch_size": c.batch_size, "processes": run.dist.world,
            "steps_done": run.step, "steps_planned": run.total, "step_plans": run.plans,
            "stopped_by": run.stopped_by, "seconds": round(run.seconds, 1),
            "settings": {k: v for k, v in c.signature().items() if k not in ("views", "index", "channels")},
            "loss_first": hist[0]["loss"] if hist else None, "loss_last": hist[-1]["loss"] if hist else None,
            "loss_curve": curve,
        },
    }


def train_ssl(cfg: SSLConfig) -> dict:
    """Train, checkpointing every ``cfg.checkpoint_minutes`` and at the end (also on Ctrl-C); return the card.

    With ``cfg.minutes`` and no ``cfg.steps`` the number of steps (which sets every cosine schedule) is fixed
    after :data:`CALIBRATION_STEPS` timed steps to fill the budget; the run also stops when the budget is spent.
    """
    from stratonet.models.precision import resolve_train_precision
    from stratonet.core.tables import read_table
    from stratonet.train.steps import autocast_for, init_distributed, seed_everything
    from stratonet.train.ssl.pool import build_pool

    if cfg.steps is None and not cfg.minutes:
        raise ConfigError("train ssl needs --steps or --minutes")
    log = get_logger()
    seed_everything(cfg.seed)
    dist, device = init_distributed(cfg.device)  # torchrun: one process per device, --batch-size each
    run_dir = cfg.run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    state_file = run_dir / STATE_FILE
    if cfg.resume:
        check_resume(cfg, state_file)  # before reading any image: a refused resume costs nothing
    elif state_file.exists():
        raise ConfigError(f"{run_dir} holds a run already; pass --resume to continue it or another --name")
    pool = build_pool(read_table(cfg.index), str(cfg.index), list(cfg.channels) if cfg.channels else None,
                      cfg.crops, cfg.dna_channel, cfg.illum, cfg.max_sites)
    run = Run(cfg, pool, device, dist)
    prec = run.precision = resolve_train_precision(cfg.precision, device, model=run.student.backbone)
    if cfg.resume:
        run.load(run_dir / STATE_FILE)
        if dist.main:
            console.print(f"resuming at step {run.step} ({run.seconds:.0f} s spent) from {run_dir / STATE_FILE}")
    d = pool.describe()
    if dist.main:
        console.print(f"train ssl: {cfg.model} ({run.init_label or 'from scratch'}) on {d['n_sites']} sites, "
                      f"{d['n_cells'] if d['n_cells'] is not None else 'tiles of'} cells, channels "
                      f"{','.join(pool.channels)}; precision {prec.name} ({prec.reason}); device {device}"
                      + (f"; {dist.world} processes x batch {cfg.batch_size}" if dist.enabled else ""),
                      highlight=False)
    autocast = (lambda: autocast_for(device, prec.name == "bf16"))
    budget = cfg.minutes * 60 if cfg.minutes else None
    _loop(run, autocast, budget, run_dir)
    if not dist.main:
        return {}
    path = save_outputs(run, run_dir)
    card = json.loads(path.read_text())
    msg = (f"train ssl: {run.step} steps in {run.seconds:.0f} s ({run.stopped_by}); loss "
           f"{card['training']['loss_first']:.3f} -> {card['training']['loss_last']:.3f}; teacher -> "
           f"{path.with_suffix('')} (extract deep --weights {path.with_suffix('')})")
    console.print(msg, highlight=False)
    log.info(msg)
    return card


def _loop(run: Run, autocast, budget: float | None, run_dir: Path) -> None:
    """Steps until the planned count or the time budget; periodic checkpoints; Ctrl-C saves and re-raises."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from stratonet.train.steps import all_reduce_max

    cfg = run.cfg
    last_save = time.perf_counter()
    bar = Progress(TextColumn("[bold]train ssl"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]}"),
                   TimeElapsedColumn(), console=console, disable=not (cfg.progress and run.dist.main),
                   transient=True)
    with bar:
        task = bar.add_task("ssl", total=run.total, completed=run.step, loss="-")
        try:
            while run.total is None or run.step < run.total:
                if budget is not None and run.seconds >= budget:
                    run.stopped_by = f"time budget ({cfg.minutes} min) at step {run.step}"
                    break
                t0 = time.perf_counter()
                row = run.train_step(autocast)
                # the slowest process's step time: every process plans and stops alike
                dt = all_reduce_max([time.perf_counter() - t0], run.dist, run.device)[0]
                run.seconds += dt
                row["seconds"] = round(run.seconds, 2)
                run.history.append(row)
                planned = plan_steps(run, budget, dt)
                if planned != run.total:
                    run.total = planned
                    run.plans.append([run.step, planned])
                    bar.update(task, total=run.total)
                bar.update(task, completed=run.step, loss=f"{row['loss']:.4f}")
                if run.dist.main and time.perf_counter() - last_save > cfg.checkpoint_minutes * 60:
                    save_outputs(run, run_dir)
                    last_save = time.perf_counter()
            else:
                run.stopped_by = f"planned steps ({run.total})"
        except KeyboardInterrupt:
            run.stopped_by = f"interrupted at step {run.step}"
            if run.dist.main:
                save_outputs(run, run_dir)
                console.print(f"interrupted: state saved at step {run.step}; rerun with --resume to continue")
            raise


def plan_steps(run: Run, budget: float | None, dt: float) -> int | None:
    """The planned step count under a time budget (``--steps`` fixes it instead).

    First from the last step's time after :data:`CALIBRATION_STEPS` steps, then again as each share of the budget
    in :data:`REPLAN_AT` is spent, from the mean step time since calibration. One step's time alone misjudged a
    run on a machine whose load changed (half the budget left unused), and so did one re-plan at a tenth of the
    budget that fell on a minute of extra load (benchmarks/quality/ssl_protocol.md).
    """
    if run.cfg.steps is not None or budget is None or run.step < CALIBRATION_STEPS:
        return run.total
    if run.total is None:
        return max(run.step + 1, run.step + int((budget - run.seconds) / dt))
    if run.step > CALIBRATION_STEPS and any(run.seconds - dt < r * budget <= run.seconds for r in REPLAN_AT):
        mean = (run.seconds - run.history[CALIBRATION_STEPS - 1]["seconds"]) / (run.step - CALIBRATION_STEPS)
        return max(run.step + 1, run.step + int((budget - run.seconds) / mean))
    return run.total

