"""train ssl: the DINO formulas (Caron et al. 2021), the views, and a seconds-long smoke run whose teacher feeds
extract deep. The real training runs in benchmarks/quality/ssl_protocol.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from conftest import run_cli
from stratonet.core.errors import ConfigError
from stratonet.train.ssl.dino import (DINOHead, DINOLoss, cosine_schedule, ema_buffers, ema_update,
                                      freeze_running_stats, teacher_temperature)
from stratonet.train.ssl.views import ViewConfig, gaussian_blur, multi_crop


def _softmax(x, t):
    e = np.exp((x - x.max(axis=-1, keepdims=True)) / t)
    return e / e.sum(axis=-1, keepdims=True)


def test_dino_loss_matches_the_published_formula():
    rng = np.random.default_rng(0)
    k, b, n_global, n_views = 7, 5, 2, 4
    student = [rng.normal(size=(b, k)) for _ in range(n_views)]
    teacher = [rng.normal(size=(b, k)) for _ in range(n_global)]
    loss = DINOLoss(k, student_temp=0.1, center_momentum=0.9)
    center = rng.normal(size=(1, k))
    loss.center.copy_(torch.tensor(center, dtype=torch.float32))
    got = float(loss([torch.tensor(s) for s in student], [torch.tensor(t) for t in teacher], teacher_temp=0.04))
    # H(P_t, P_s) = -sum P_t log P_s, P_t = softmax((t - c) / tau_t), P_s = softmax(s / tau_s); pairs v != i
    terms = [(-_softmax(teacher[i] - center, 0.04) * np.log(_softmax(student[v], 0.1))).sum(axis=1).mean()
             for i in range(n_global) for v in range(n_views) if v != i]
    assert len(terms) == n_global * (n_views - 1)
    assert got == pytest.approx(np.mean(terms), rel=1e-4)
    # the centre moved to m c + (1 - m) mean over the teacher's batch (all global views)
    expect = 0.9 * center + 0.1 * np.concatenate(teacher).mean(axis=0, keepdims=True)
    assert np.allclose(loss.center.numpy(), expect, atol=1e-6)


def test_cosine_schedules():
    assert cosine_schedule(1.0, 0.0, 0, 100) == pytest.approx(1.0)
    assert cosine_schedule(1.0, 0.0, 100, 100) == pytest.approx(0.0)
    assert cosine_schedule(1.0, 0.0, 50, 100) == pytest.approx(0.5)
    assert cosine_schedule(1.0, 0.0, 5, 100, warmup=10) == pytest.approx(0.5)  # linear warm-up from 0
    # teacher momentum: m_k = 1 - (1 - m0)(cos(pi k / K) + 1) / 2
    for k in (0, 30, 100):
        assert cosine_schedule(0.996, 1.0, k, 100) == pytest.approx(1 - 0.004 * (math.cos(math.pi * k / 100) + 1) / 2)
    assert teacher_temperature(0, 100, 0.04, 0.07, warmup=10) == pytest.approx(0.04)
    assert teacher_temperature(50, 100, 0.04, 0.07, warmup=10) == pytest.approx(0.07)


def test_ema_update_and_head():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    wa, wb = a.weight.detach().clone(), b.weight.detach().clone()
    ema_update(a, b, 0.9)
    assert torch.allclose(a.weight, 0.9 * wa + 0.1 * wb)
    ta, sb = torch.nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2)
    sb(torch.randn(8, 2, 4, 4) * 3 + 1)  # the student's statistics move; the teacher's follow at rate 1 - m
    ema_buffers(ta, sb, 0.9)
    assert torch.allclose(ta.running_var, 0.9 * torch.ones(2) + 0.1 * sb.running_var)
    assert int(ta.num_batches_tracked) == 1
    head = DINOHead(16, out_dim=32, hidden_dim=24, bottleneck_dim=8)
    assert head(torch.randn(4, 16)).shape == (4, 32)
    # norm_last_layer: every prototype has norm 1 and the magnitude is not trained
    w = head.last_layer.weight
    assert torch.allclose(w.norm(dim=1), torch.ones(32), atol=1e-5)
    assert not head.last_layer.parametrizations.weight.original0.requires_grad


def test_teacher_normalises_by_batch_and_keeps_its_running_statistics():
    teacher = freeze_running_stats(torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3)))
    bn = teacher[1]
    before = (bn.running_mean.clone(), bn.running_var.clone())
    y = teacher(torch.randn(6, 1, 8, 8) * 5 + 3)
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    # normalised by the batch's own statistics, not by the (untouched) running ones
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.var(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)


def test_head_batchnorm_spreads_inputs_that_share_a_direction():
    torch.manual_seed(0)
    # pooled post-ReLU taps: positive, nearly parallel vectors
    x = 1.0 + 0.01 * torch.rand(16, 32)
    for use_bn, spread in ((False, lambda s: s < 0.01), (True, lambda s: s > 0.5)):
        head = DINOHead(32, out_dim=64, hidden_dim=48, bottleneck_dim=8, use_bn=use_bn).train()
        z = torch.nn.functional.normalize(head.mlp(x), dim=-1).detach()
        assert spread(float((z - z.mean(dim=0)).norm(dim=1).mean())), use_bn


def test_views_are_single_stain_in_range_and_seeded():
    plane = torch.rand(100, 120).to(torch.float16)
    cfg = ViewConfig(region=60, global_size=32, local_size=16, n_global=2, n_local=3)
    v1 = multi_crop(plane, 50, 60, cfg, torch.Generator().manual_seed(1))
    v2 = multi_crop(plane, 50, 60, cfg, torch.Generator().manual_seed(1))
    assert [tuple(v.shape) for v in v1] == [(1, 32, 32)] * 2 + [(1, 16, 16)] * 3
    assert all(float(v.min()) >= 0 and float(v.max()) <= 1 for v in v1)
    assert all(torch.equal(a, b) for a, b in zip(v1, v2))
    # a point at the edge still gives a full view (the square is shifted inside the image)
    assert multi_crop(plane, 0, 0, cfg, torch.Generator().manual_seed(2))[0].shape == (1, 32, 32)
    flat = torch.full((1, 20, 20), 0.5)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat, atol=1e-6)  # blur keeps a flat image


def _nuclei_plane(rng, size=128, n=8):
    """uint16 plane with ``n`` nucleus-sized discs (radius 9 px)."""
    yy, xx = np.mgrid[:size, :size]
    img = rng.normal(300, 20, (size, size))
    for cy, cx in rng.uniform(14, size - 14, (n, 2)):
        img += 4000 * (((yy - cy) ** 2 + (xx - cx) ** 2) < 81)
    return np.clip(img, 0, 65535).astype(np.uint16)


@pytest.fixture
def cell_index(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for s in range(2):
        row = {"Metadata_Plate": "P1", "Metadata_Well": f"A0{s + 1}", "Metadata_Site": 1}
        for ch in ("DNA", "GFP"):
            p = tmp_path / f"s{s}_{ch}.tiff"
            tifffile.imwrite(p, _nuclei_plane(rng))
            row[f"Path_{ch}"] = str(p)
        rows.append(row)
    path = tmp_path / "index.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


SMOKE = ["--model", "stratonet18", "--steps", "2", "--batch-size", "2", "--region", "48", "--view-size", "32",
         "--local-size", "16", "--local-views", "2", "--out-dim", "16", "--precision", "fp32"]


def test_train_ssl_smoke_feeds_extract_deep_and_resumes(cell_index, tmp_path):
    from stratonet.runtime import extract_deep

    run = tmp_path / "run"
    assert run_cli(["train", "ssl", cell_index, "-o", run, *SMOKE]) == 0
    folder = run / "train" / "ssl_stratonet18"
    card = json.loads((folder / "teacher.json").read_text())
    assert card["input_size"] == 32 and card["pixel_scale"] == "native"
    data = card["training_data"]
    assert data["n_sites"] == 2 and data["plates"] == ["P1"] and data["n_cells"] >= 8 and not data["labels_read"]
    tr = card["training"]
    assert tr["steps_done"] == 2 and len(tr["loss_curve"]) == 2 and tr["seconds"] > 0
    assert tr["views"]["global_size"] == 32 and "DINO" in tr["method"]
    assert (folder / "curves.png").stat().st_size > 0  # the loss curve, for people who would rather look
    from stratonet.report import build_report

    html = build_report(run).read_text()  # the report lists the run: steps, time, loss, and that no label was read
    assert f"2 steps, {tr['seconds']:.0f} s; loss" in html and "no labels read" in html
    # the teacher feeds extract deep with its taps; whole fields stay at their native size
    man = extract_deep(cell_index, tmp_path / "f.parquet", weights=folder / "teacher", workers=0, progress=False)
    assert man["provenance"]["weights"].startswith("ssl-stratonet18")
    assert man["provenance"]["taps"] == card["taps"] and man["provenance"]["input_size"] == "native 128x128"
    assert man["features"] == 2 * sum(f["channels"] for f in card["feature_info"])
    # which data the weights saw, in the manifest (and so the report), but not in the resume signature
    trained_on = man["provenance"]["weights_trained_on"]
    assert trained_on.startswith("1 plate (P1); 2 sites; ") and "labels not read" in trained_on
    assert trained_on.endswith("DINO self-distillation: 2 steps, " + f"{tr['seconds']:.0f} s")
    # resume continues the same run up to more steps; other settings are refused
    assert run_cli(["train", "ssl", cell_index, "-o", run, *SMOKE[:3], "3", *SMOKE[4:], "--resume"]) == 0
    assert json.loads((folder / "teacher.json").read_text())["training"]["steps_done"] == 3
    assert run_cli(["train", "ssl", cell_index, "-o", run, *SMOKE, "--resume", "--lr", "1e-3"]) == 2
    assert run_cli(["train", "ssl", cell_index, "-o", run, *SMOKE]) == 2  # no silent overwrite


def test_train_ssl_bad_channel_is_one_line(cell_index, tmp_path, capsys):
    assert run_cli(["train", "ssl", cell_index, "-o", tmp_path / "r", *SMOKE, "--channels", "ER"]) == 2
    assert "ER" in capsys.readouterr().err


def test_init_must_hold_the_model(tmp_path, cell_index):
    from stratonet.train.ssl.config import SSLConfig
    from stratonet.train.ssl.trainer import build_backbone

    with pytest.raises(ConfigError, match="efficientnet_lite0"):
        build_backbone(SSLConfig(index=cell_index, out=tmp_path, model="stratonet18", init="efficientnet_lite0.in1k"))


def test_train_ssl_under_torchrun_two_processes(cell_index, tmp_path):
    """DDP through torchrun (gloo on CPU): both processes plan the same steps; only the main one writes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src"
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "stratonet",
           "train", "ssl", str(cell_index), "-o", str(run), *SMOKE]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    card = json.loads((run / "train" / "ssl_stratonet18" / "teacher.json").read_text())
    assert card["training"]["processes"] == 2 and card["training"]["steps_done"] == 2
    assert res.stderr.count("train ssl: 2 steps") == 1  # one summary, from the main process


def test_step_plan_is_set_after_calibration_and_corrected_from_the_mean():
    from types import SimpleNamespace

    from stratonet.train.ssl.trainer import CALIBRATION_STEPS, REPLAN_AT, plan_steps

    budget = 1000.0
    run = SimpleNamespace(cfg=SimpleNamespace(steps=None), total=None, step=1, seconds=2.0, history=[])
    assert plan_steps(run, budget, 1.0) is None  # still calibrating
    run.step, run.seconds = CALIBRATION_STEPS, 4.0
    run.history = [{"seconds": 2.0}, {"seconds": 4.0}]
    run.total = plan_steps(run, budget, 2.0)
    assert run.total == 2 + int(996 / 2.0)
    # the load rises: steps take 4 s; just before a tenth of the budget nothing changes, at it the plan is redone
    run.step, run.seconds = 26, 99.0
    assert plan_steps(run, budget, 4.0) == run.total
    run.step, run.seconds = 27, 103.0
    assert run.seconds - 4.0 < REPLAN_AT[0] * budget <= run.seconds
    run.total = plan_steps(run, budget, 4.0)
    assert run.total == 27 + int((budget - 103.0) / ((103.0 - 4.0) / 25))
    run.step, run.seconds = 28, 107.0  # not again until the next share of the budget
    assert plan_steps(run, budget, 4.0) == run.total
    # the load falls again (2 s per step): at a fifth of the budget the plan follows the new mean
    run.step, run.seconds = 75, 201.0
    assert plan_steps(run, budget, 2.0) == 75 + int((budget - 201.0) / ((201.0 - 4.0) / 73))
    assert plan_steps(SimpleNamespace(cfg=SimpleNamespace(steps=50), total=50, step=27, seconds=104.0), budget,
                      4.0) == 50  # --steps fixes it
