"""Precision of deep extraction: how ``auto`` chooses (mocked CPU probe), the record of the choice, and the bf16 and
int8 tolerances against fp32 on a real JUMP field of view.

Tolerance definitions used below, for features ``F32`` and ``Fp`` of shape ``(images, features)``:

- per-feature cosine: for each feature ``j``, the cosine between the column ``F32[:, j]`` and ``Fp[:, j]``, i.e. the
  fp32 and low-precision values of that one feature across all images (columns that are zero at fp32 are left out);
- per-image cosine: for each image, the cosine between its fp32 and low-precision feature vectors;
- "strong" features: those whose fp32 column norm is at least ``STRONG`` times the largest column norm.

Measured on this FOV (StratoNet-50, untrained seed 0, 27 channel images of 224 px, 3,072 features each), torch 2.13
CPU: bf16 per-image cosine >= 0.99998; per-feature cosine >= 0.999 for 96.8 % of all features and for every strong
feature (STRONG = 3 %, min 0.9998); the 99 features below 0.999 are near zero at fp32 (column norm < 1 % of the
largest; worst 0.82 at a norm 2e5 times below the largest, two go to exactly 0 in bf16). int8: per-image cosine
>= 0.9996; per-feature cosine >= 0.99 for only 85 % of all features (181 small features become exactly 0), but for
every feature above 10 % of the largest norm. So the per-feature targets hold for the strong features only, and the
tests below say so rather than claim more. int8 is not offered by ``extract deep`` (too inaccurate here and only
1.15x faster than bf16); its test pins down the measured accuracy of the experimental path the benchmark uses.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run_cli
from stratonet.core.errors import ConfigError
from stratonet.models import precision as precision_mod
from stratonet.extract.deep.run import manifest_path
from stratonet.runtime import extract_deep
from stratonet.extract.deep.inference import Embedder
from stratonet.models.precision import cpu_flags, cpu_native_bf16, resolve_precision
from stratonet.images.transforms import rescale_to_unit, resize_batch
from stratonet.images.io import read_image
from stratonet.models import create_model
from stratonet.core.tables import read_provenance

CPU = torch.device("cpu")
NO_BF16 = {"fpu", "sse2", "avx2", "fma", "avx512f"}


def mock_flags(monkeypatch, flags):
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda *a, **k: set(flags))


# --- selection ----------------------------------------------------------------------------------------------------
def test_cpu_flags_parses_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512_bf16 amx_tile\n\nflags : other\n")
    assert cpu_flags(str(info)) == {"fpu", "avx2", "avx512_bf16", "amx_tile"}
    assert cpu_flags(str(tmp_path / "absent")) == set()
    assert cpu_native_bf16({"avx512_bf16"}) == "avx512_bf16"
    assert cpu_native_bf16({"amx_bf16", "amx_tile"}) == "amx_bf16"
    assert cpu_native_bf16(NO_BF16) is None


@pytest.mark.parametrize("flags, expected", [
    (NO_BF16 | {"avx512_bf16"}, "bf16"),
    (NO_BF16 | {"amx_bf16", "amx_tile"}, "bf16"),
    (NO_BF16, "fp32"),
    (set(), "fp32"),
])
def test_auto_on_cpu_follows_the_probe(monkeypatch, flags, expected):
    mock_flags(monkeypatch, flags)
    chosen = resolve_precision("auto", CPU)
    assert chosen.name == expected and chosen.requested == "auto"
    assert ("native bf16" in chosen.reason) and (("lacks" in chosen.reason) == (expected == "fp32"))


def test_auto_on_cuda_is_bf16_and_explicit_choices_are_kept(monkeypatch):
    mock_flags(monkeypatch, NO_BF16)
    assert resolve_precision("auto", torch.device("cuda")).name == "bf16"
    assert resolve_precision("fp32", CPU).name == "fp32"
    emulated = resolve_precision("bf16", CPU)
    assert emulated.name == "bf16" and "emulated" in emulated.reason
    with pytest.raises(ConfigError, match="int8 is not offered"):
        resolve_precision("int8", CPU)
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", CPU)


@pytest.mark.parametrize("cores", [1, 2, 4, 7, 8, 16, 64])
def test_default_threads_and_workers_never_oversubscribe(cores):
    for prec in ("fp32", "bf16", "int8"):
        threads, workers = precision_mod.default_threads_workers(prec, CPU, cores=cores)
        assert threads >= 1 and workers >= 0
        # model threads + worker processes (one thread each) fit the cores; with no worker the decode thread (busy
        # about 1/9 of the time, see default_threads_workers) shares them
        assert threads + workers <= cores
        # small machines decode in the main process (a background thread); from 8 cores one process per 8 cores
        assert workers == (0 if cores < 8 else cores // 8)
        assert (threads, workers) == precision_mod.default_threads_workers("auto", CPU, cores=cores)
    # workers given: the model gets the cores they leave, at least one
    assert precision_mod.default_threads_workers("bf16", CPU, cores=cores, workers=1) == (max(1, cores - 1), 1)
    assert precision_mod.default_threads_workers("bf16", CPU, cores=cores, workers=0) == (cores, 0)


def test_default_batch_size_per_device():
    assert precision_mod.default_batch_size(CPU) == 16
    assert precision_mod.default_batch_size(torch.device("cuda")) == 64


@pytest.mark.parametrize("flags, expected", [(NO_BF16 | {"avx512_bf16"}, "bf16"), (NO_BF16, "fp32")])
def test_manifest_and_provenance_record_the_precision(monkeypatch, tmp_path, flags, expected):
    mock_flags(monkeypatch, flags)
    rng = np.random.default_rng(0)
    import tifffile

    rows = []
    for s in range(2):
        p = tmp_path / f"s{s}.tiff"
        tifffile.imwrite(p, rng.integers(0, 4000, (64, 64)).astype(np.uint16))
        rows.append({"Metadata_Plate": "P", "Metadata_Well": f"A0{s + 1}", "Metadata_Site": 1, "Path_DNA": str(p)})
    out = tmp_path / "deep.parquet"
    man = extract_deep(pd.DataFrame(rows), out, model="stratonet18", input_size=32, workers=0, progress=False)
    assert read_provenance(out)["precision"] == expected
    saved = json.loads(manifest_path(out).read_text())
    assert saved["precision"]["precision"] == expected and saved["precision"]["requested"] == "auto"
    assert saved["provenance"]["precision"] == expected == man["provenance"]["precision"]
    # a resume at another precision would mix precisions in one table: refused
    with pytest.raises(ConfigError, match="precision"):
        extract_deep(pd.DataFrame(rows), out, model="stratonet18", input_size=32, workers=0, progress=False,
                     precision="fp32" if expected == "bf16" else "bf16")


# --- tolerance on a real field of view ----------------------------------------------------------------------------
def fov_tiles(jump_fov, grid: int = 3, size: int = 224) -> torch.Tensor:
    """The real JUMP FOV's 3 channels, each cut into ``grid`` x ``grid`` tiles resized to ``size``:
    ``(grid * grid * 3, 1, size, size)`` channel images in [0, 1]."""
    orig = jump_fov / "images" / "orig"
    planes = [read_image(orig / f"r01c01f01p01-ch{c}sk1fk1fl1.tiff") for c in (2, 3, 5)]  # AGP, RNA, DNA
    unit = rescale_to_unit(np.stack(planes))  # (3, H, W)
    side = unit.shape[-1] // grid
    tiles = [unit[:, i * side:(i + 1) * side, j * side:(j + 1) * side] for i in range(grid) for j in range(grid)]
    return resize_batch(torch.stack(tiles), size).reshape(-1, 1, size, size)


def agreement(ref: np.ndarray, low: np.ndarray, strong: float, bound: float) -> dict:
    """Per-image cosine, per-feature cosine (all features non-zero at fp32; a feature that is all zero at low
    precision counts as cosine 0) and the same over the strong features (see the module docstring)."""
    ref, low = ref.astype(np.float64), low.astype(np.float64)
    norm_ref, norm_low = np.linalg.norm(ref, axis=0), np.linalg.norm(low, axis=0)
    live = norm_ref > 0
    per_feature = np.where(norm_low[live] > 0, (ref[:, live] * low[:, live]).sum(0)
                           / (norm_ref[live] * np.maximum(norm_low[live], 1e-300)), 0.0)
    is_strong = norm_ref[live] >= strong * norm_ref.max()
    per_image = (ref * low).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(low, axis=1))
    return {"per_image_min": per_image.min(), "per_feature_fraction_ok": float((per_feature >= bound).mean()),
            "strong_per_feature_min": per_feature[is_strong].min(), "features": int(live.sum()),
            "strong_features": int(is_strong.sum())}


@pytest.fixture(scope="module")
def fov_features(request):
    from conftest import JUMP_FOV, need

    tiles = fov_tiles(need(JUMP_FOV))
    net = create_model("stratonet50", seed=0)
    norm = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    out = {}
    for prec in ("fp32", "bf16"):
        out[prec] = Embedder(net, CPU, batch_size=32, precision=prec, **norm)(tiles)[:, 0]
    int8 = Embedder(net, CPU, batch_size=32, precision="int8", **norm)
    int8.calibrate(tiles[::3])  # a third of the channel images, as a sample of a screen's sites calibrates it
    out["int8"] = int8(tiles)[:, 0]
    return out


def test_bf16_within_tolerance_on_real_fov(fov_features):
    agree = agreement(fov_features["fp32"], fov_features["bf16"], strong=0.03, bound=0.999)
    assert agree["features"] > 3000 and agree["strong_features"] > 2000, agree
    assert agree["per_image_min"] >= 0.999, agree
    assert agree["strong_per_feature_min"] >= 0.999, agree
    assert agree["per_feature_fraction_ok"] >= 0.95, agree  # not all: the weakest features are noise-level


def test_int8_measured_accuracy_on_real_fov(fov_features):
    agree = agreement(fov_features["fp32"], fov_features["int8"], strong=0.10, bound=0.99)
    assert agree["strong_features"] > 1500, agree
    assert agree["per_image_min"] >= 0.99, agree
    assert agree["strong_per_feature_min"] >= 0.99, agree
    assert agree["per_feature_fraction_ok"] >= 0.80, agree  # 85 % measured: int8 zeroes small features


def test_int8_is_refused_by_the_cli(tmp_path, capsys):
    rc = run_cli(["extract", "deep", tmp_path / "index.parquet", "-o", tmp_path / "deep.parquet",
                  "--precision", "int8"])
    assert rc != 0 and "int8" in capsys.readouterr().err


def test_auto_keeps_models_without_a_bf16_check_in_fp32(monkeypatch):
    """EfficientNet-Lite0 (ImageNet weights) gave per-image cosine 0.973 in bf16 on the real FOV: auto avoids it."""
    mock_flags(monkeypatch, NO_BF16 | {"avx512_bf16"})
    checked = create_model("stratonet18", seed=0)
    assert resolve_precision("auto", CPU, checked).name == "bf16"

    class OtherNet(torch.nn.Module):
        pass

    chosen = resolve_precision("auto", CPU, OtherNet())
    assert chosen.name == "fp32" and "not validated" in chosen.reason
    forced = resolve_precision("bf16", CPU, OtherNet())
    assert forced.name == "bf16" and "WARNING" in forced.reason
