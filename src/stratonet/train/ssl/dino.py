"""The parts of DINO (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers") in torch.

- :class:`DINOHead`: MLP (3 layers, GELU) -> bottleneck -> L2 normalisation -> weight-normalised linear layer to K
  prototypes (its norm fixed to 1).
- :class:`DINOLoss`: ``H(P_t, P_s) = - sum_k P_t(k) log P_s(k)`` with ``P_s = softmax(g_s(x) / tau_s)`` and
  ``P_t = softmax((g_t(x) - c) / tau_t)`` (sharpening by a low teacher temperature, centring by ``c``), summed over
  every (teacher global view, student view) pair of different views and averaged; the centre is an EMA of the
  teacher's batch mean, ``c <- m c + (1 - m) mean(g_t)``.
- :func:`cosine_schedule`: ``final + (base - final) (1 + cos(pi k / K)) / 2`` after an optional linear warm-up; the
  teacher momentum follows it from ``m0`` to 1, ``m_k = 1 - (1 - m0)(cos(pi k / K) + 1) / 2``.
- :func:`ema_update`: ``theta_t <- m theta_t + (1 - m) theta_s``; :func:`ema_buffers` does the same for the
  BatchNorm running statistics (a departure from DINO, whose teacher runs in train mode; see the function).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DINOHead(nn.Module):
    """Projection head ``in_dim -> hidden -> hidden -> bottleneck -> (L2) -> out_dim`` (weight-normalised last
    layer).

    ``use_bn`` puts BatchNorm after the two hidden layers (DINO's ``--use_bn_in_head``). Pooled CNN taps after ReLU
    point in nearly one direction for every input; without it a from-scratch StratoNet-18 collapsed to the uniform
    distribution (loss exactly log K from step 50 on, benchmarks/quality/ssl_protocol.md).
    """

    def __init__(self, in_dim: int, out_dim: int = 4096, hidden_dim: int = 1024, bottleneck_dim: int = 128,
                 use_bn: bool = True):
        super().__init__()
        norm = (lambda: nn.BatchNorm1d(hidden_dim)) if use_bn else nn.Identity
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), norm(), nn.GELU(), nn.Linear(hidden_dim, hidden_dim),
                                 norm(), nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        last = nn.Linear(bottleneck_dim, out_dim, bias=False)
        self.last_layer = nn.utils.parametrizations.weight_norm(last)
        with torch.no_grad():  # norm_last_layer: the magnitude g stays 1, only the direction learns
            self.last_layer.parametrizations.weight.original0.fill_(1.0)
        self.last_layer.parametrizations.weight.original0.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(x), dim=-1, p=2)
        return self.last_layer(x)


class DINOLoss(nn.Module):
    """Cross-entropy between the centred, sharpened teacher and the student, over pairs of different views.

    Parameters
    ----------
    out_dim : int
        Prototypes K.
    student_temp : float
        tau_s (0.1 in the paper).
    center_momentum : float
        m of the centre's EMA (0.9).
    """

    def __init__(self, out_dim: int, student_temp: float = 0.1, center_momentum: float = 0.9):
        super().__init__()
        self.student_temp = float(student_temp)
        self.center_momentum = float(center_momentum)
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(self, student_out: list[torch.Tensor], teacher_out: list[torch.Tensor],
                teacher_temp: float) -> torch.Tensor:
        """Mean of ``H(P_t(global i), P_s(view v))`` over ``v != i``.

        Parameters
        ----------
        student_out : list of (B, K) tensors, one per view (the global views first)
        teacher_out : list of (B, K) tensors, one per global view
        teacher_temp : float
            tau_t for this step.
        """
        s_logp = [F.log_softmax(s.float() / self.student_temp, dim=-1) for s in student_out]
        t_prob = [F.softmax((t.float() - self.center) / teacher_temp, dim=-1).detach() for t in teacher_out]
        total, pairs = 0.0, 0
        for i, t in enumerate(t_prob):
            for v, s in enumerate(s_logp):
                if v == i:
                    continue  # a view never predicts itself
                total = total + torch.sum(-t * s, dim=-1).mean()
                pairs += 1
        self.update_center(teacher_out)
        return total / pairs

    @torch.no_grad()
    def update_center(self, teacher_out: list[torch.Tensor]) -> None:
        batch_center = torch.cat([t.float() for t in teacher_out]).mean(dim=0, keepdim=True)
        if torch.distributed.is_available() and torch.distributed.is_initialized():  # the mean over all processes
            torch.distributed.all_reduce(batch_center)
            batch_center /= torch.distributed.get_world_size()
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)


def cosine_schedule(base: float, final: float, step: int, total: int, warmup: int = 0,
                    warmup_start: float = 0.0) -> float:
    """Value at ``step`` of ``total``: linear from ``warmup_start`` to ``base`` over ``warmup`` steps, then cosine
    from ``base`` to ``final``."""
    if step < warmup:
        return warmup_start + (base - warmup_start) * step / max(1, warmup)
    k, n = step - warmup, max(1, total - warmup)
    return final + (base - final) * (1 + math.cos(math.pi * min(k, n) / n)) / 2


def teacher_temperature(step: int, total: int, base: float = 0.04, final: float = 0.04, warmup: int = 0) -> float:
    """tau_t: linear warm-up from ``base`` to ``final`` over ``warmup`` steps, then constant (as in the paper)."""
    if step < warmup:
        return base + (final - base) * step / max(1, warmup)
    return final


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``theta_t <- m theta_t + (1 - m) theta_s`` for every parameter (buffers are the teacher's own)."""
    for pt, ps in zip(teacher.parameters(), student.parameters()):
        pt.mul_(momentum).add_(ps.detach(), alpha=1 - momentum)


def freeze_running_stats(model: nn.Module) -> nn.Module:
    """Train-mode BatchNorm that normalises by the batch but never updates its running statistics (momentum 0).

    The teacher runs so: batch statistics during training (as DINO's teacher), while its saved running statistics
    come only from :func:`ema_buffers`.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.0
    return model.train()


@torch.no_grad()
def ema_buffers(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """Running statistics of the teacher as an EMA of the student's (floating buffers; counters copied).

    Measured on BBBC013 (benchmarks/quality/ssl_protocol.md): a teacher whose own train-mode passes updated its
    running statistics, started from ImageNet Lite0, had its BatchNorm running variances moved by a median 8 %
    (max 32 %) in 3 steps while its weights moved by 1e-7, and its Z' fell from 0.606 to 0.588. With this EMA the
    statistics move no faster than the weights. (A teacher in eval mode instead normalised a from-scratch network
    by statistics hundreds of steps behind, so :func:`freeze_running_stats` keeps it in train mode.)
    """
    for bt, bs in zip(teacher.buffers(), student.buffers()):
        if bt.dtype.is_floating_point:
            bt.mul_(momentum).add_(bs.detach(), alpha=1 - momentum)
        else:
            bt.copy_(bs)
