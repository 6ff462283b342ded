"""Fuzz harness (issue 27): random small indexes, images, metadata and options through the CLI, in process.

Every command either exits 0 with complete, finite, correctly counted output, or exits 2 with one error line (never
a traceback, an internal error or another code). A few examples run in the suite (well under a minute together);
set ``STRATONET_FUZZ_EXAMPLES=2000`` for the long run (benchmarks/quality/fuzz.md has its command and findings).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli

LONG = int(os.environ.get("STRATONET_FUZZ_EXAMPLES", "0"))


def fuzz_settings(ci_examples: int):
    """``ci_examples`` in the suite, ``STRATONET_FUZZ_EXAMPLES`` when set; no deadline (a shared machine)."""
    return settings(max_examples=LONG or ci_examples, deadline=None, derandomize=not LONG,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


PLATES = st.sampled_from(["P1", "P2", "Plaque-é", "板1", "P 3"])
WELLS = st.sampled_from(["A01", "B02", "P24", "A25", "a1", "H12", "Z99", "", "A1"])
KINDS = st.sampled_from(["random", "random", "random", "constant", "nan", "inf"])
DTYPES = st.sampled_from(["uint8", "uint16", "float32"])


@st.composite
def image_rows(draw, max_rows: int = 4):
    """Index rows (plate, well, site) with, per channel, an image recipe (dtype, side, content)."""
    n = draw(st.integers(1, max_rows))
    rows = []
    for _ in range(n):
        rows.append({"plate": draw(PLATES), "well": draw(WELLS), "site": draw(st.integers(1, 3)),
                     "images": [(draw(DTYPES), draw(st.sampled_from([24, 24, 24, 32])), draw(KINDS))
                                for _ in range(2)]})
    return rows


def make_image(dtype: str, side: int, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = {"uint8": 255, "uint16": 4000, "float32": 1.0}[dtype]
    img = rng.uniform(0, top, (side, side)).astype(dtype)
    if kind == "constant":
        img[:] = img.flat[0]
    elif kind in ("nan", "inf") and dtype == "float32":
        img.flat[: side] = np.nan if kind == "nan" else np.inf
    return img


def write_index(folder: Path, rows: list[dict]) -> tuple[Path, list[bool]]:
    """The index file and, per row, whether its images are good (finite, non-constant, one size)."""
    records, good = [], []
    for i, r in enumerate(rows):
        rec = {"Metadata_Plate": r["plate"], "Metadata_Well": r["well"], "Metadata_Site": r["site"]}
        ok = len({side for _, side, _ in r["images"]}) == 1
        for ch, (dtype, side, kind) in zip(("DNA", "ER"), r["images"]):
            p = folder / f"r{i}_{ch}.tif"
            tifffile.imwrite(p, make_image(dtype, side, kind, seed=i * 10 + len(ch)))
            rec[f"Path_{ch}"] = str(p)
            ok &= kind == "random" or (kind in ("nan", "inf") and dtype != "float32")
        records.append(rec)
        good.append(ok)
    path = folder / "index.parquet"
    pd.DataFrame(records).to_parquet(path)
    return path, good


def check_outcome(rc: int, err: str) -> None:
    """Exit 0, or exit 2 with exactly one error line; never a traceback or an internal error."""
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    assert rc in (0, 2), f"exit {rc}: {err[-2000:]}"
    if rc == 2:
        lines = [ln for ln in err.splitlines() if ln.startswith(("error:", "Error:"))]  # ours, or click's usage
        assert len(lines) == 1, err[-2000:]


def check_table(out: Path, n_expected: int, keys: list[str]) -> pd.DataFrame:
    df = pd.read_parquet(out)
    feats = df[[c for c in df.columns if not c.startswith("Metadata_")]]
    assert len(df) == n_expected
    assert np.isfinite(feats.to_numpy(dtype=np.float64)).all(), "non-finite features with exit 0"
    assert not df.duplicated(subset=keys).any()
    return df


@fuzz_settings(ci_examples=6)
@given(rows=image_rows(), size=st.sampled_from([1, 4, 0]), scaling=st.sampled_from(["image", "plate", "bitdepth"]),
       on_error=st.sampled_from(["fail", "skip"]))
def test_fuzz_extract_pixel(capsys, rows, size, scaling, on_error):
    capsys.readouterr()
    with tempfile.TemporaryDirectory() as tmp:
        idx, good = write_index(Path(tmp), rows)
        out = Path(tmp) / "px.parquet"
        rc = run_cli(["extract", "pixel", idx, "-o", out, "--size", size, "--scaling", scaling,
                      "--on-error", on_error])
        err = capsys.readouterr().err
        check_outcome(rc, err)
        if rc != 0:
            return
        index = pd.read_parquet(idx)
        assert size >= 1 and not index.duplicated(["Metadata_Plate", "Metadata_Well", "Metadata_Site"]).any()
        man = json.loads((Path(tmp) / "px.manifest.json").read_text())
        assert man["n_sites"] + man["errors"] == len(index), man  # every row is written or listed as an error
        df = check_table(out, man["n_sites"], ["Metadata_Plate", "Metadata_Well", "Metadata_Site"])
        assert man["n_sites"] == sum(good), (good, man)  # bad images are exactly the errors
        if on_error == "fail":
            assert all(good)
        feats = df[[c for c in df.columns if c.startswith(("DNA_", "ER_"))]]
        if scaling == "image" and len(df) > 1:  # distinct random images never give identical rows (D10)
            assert len(feats.drop_duplicates()) == len(feats)


@st.composite
def feature_tables(draw):
    n = draw(st.integers(2, 10))
    rng = np.random.default_rng(draw(st.integers(0, 10 ** 6)))
    df = pd.DataFrame({
        "Metadata_Plate": [draw(PLATES) for _ in range(n)],
        "Metadata_Well": [draw(WELLS) for _ in range(n)],
        "Metadata_Site": [draw(st.integers(1, 2)) for _ in range(n)],
        "Metadata_control_type": [draw(st.sampled_from(["negcon", "trt", "trt", None])) for _ in range(n)],
    })
    for j in range(draw(st.integers(1, 5))):
        col = rng.normal(size=n)
        kind = draw(st.sampled_from(["normal", "normal", "constant", "nan", "inf"]))
        if kind == "constant":
            col[:] = 1.0
        elif kind in ("nan", "inf"):
            col[draw(st.integers(0, n - 1))] = np.nan if kind == "nan" else np.inf
        df[f"Cells_F{j}"] = col
    return df


@fuzz_settings(ci_examples=8)
@given(df=feature_tables(), level=st.sampled_from(["none", "site", "well"]),
       method=st.sampled_from(["none", "standardize", "mad_robustize"]),
       select=st.sampled_from(["none", "variance_threshold,drop_na_columns", "drop_na_columns"]),
       reference=st.sampled_from(["negcon", "all"]))
def test_fuzz_profile(capsys, df, level, method, select, reference):
    capsys.readouterr()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "f.parquet", Path(tmp) / "p.parquet"
        df.to_parquet(src)
        rc = run_cli(["profile", src, "-o", out, "--aggregate", level, "--normalize", method, "--select", select,
                      "--reference", reference])
        err = capsys.readouterr().err
        check_outcome(rc, err)
        if rc != 0:
            return
        prof = pd.read_parquet(out)
        feats = [c for c in prof.columns if not c.startswith("Metadata_")]
        assert feats and len(prof) >= 1
        n_nan = int(prof[feats].isna().to_numpy().sum())
        assert np.isfinite(prof[feats].to_numpy(dtype=np.float64)[~prof[feats].isna().to_numpy()]).all()
        if n_nan:  # missing values may pass only when no NA filter was asked for, and then they are said
            assert "drop_na_columns" not in select and "missing" in err.lower(), err[-1500:]


@pytest.mark.skipif(not LONG and os.environ.get("STRATONET_FUZZ_DEEP") is None, reason="slow; the long run has it")
@fuzz_settings(ci_examples=3)
@given(rows=image_rows(max_rows=3), scaling=st.sampled_from(["image", "plate", "bitdepth"]))
def test_fuzz_extract_deep(capsys, rows, scaling):
    capsys.readouterr()
    with tempfile.TemporaryDirectory() as tmp:
        idx, good = write_index(Path(tmp), rows)
        out = Path(tmp) / "d.parquet"
        rc = run_cli(["extract", "deep", idx, "-o", out, "--model", "stratonet18", "--input-size", "32",
                      "--workers", "0", "--scaling", scaling, "--on-error", "skip"])
        check_outcome(rc, capsys.readouterr().err)
        if rc == 0:
            man = json.loads((Path(tmp) / "d.manifest.json").read_text())
            assert man["sites_processed"] + man["errors"] == man["sites_total"] == len(rows)
            check_table(out, man["sites_processed"], ["Metadata_Plate", "Metadata_Well", "Metadata_Site"])
