"""Issue 27, D2 and D3: every image is scaled by its own dtype before any pooling; a non-finite or constant image
is a bad site, never a poisoned plate; a plate whose files mix dtypes is named."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_cli

DEEP = ["--model", "stratonet18", "--input-size", "32", "--workers", "0"]


def _plate(tmp_path, odd: dict | None = None, n: int = 4) -> "Path":  # noqa: F821
    """``n`` uint16 sites (DNA, ER); ``odd`` replaces the DNA file of some wells: well -> array."""
    rng = np.random.default_rng(1)
    rows = []
    for s in range(n):
        well = f"A0{s + 1}"
        row = {"Metadata_Plate": "P1", "Metadata_Well": well, "Metadata_Site": 1}
        for ch in ("DNA", "ER"):
            img = (rng.gamma(2.0, 300.0, (40, 40)) * (1 + s)).astype(np.uint16)
            if ch == "DNA" and odd and well in odd:
                img = odd[well](img)
            p = tmp_path / "img" / f"{well}_{ch}.tif"
            p.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(p, img)
            row[f"Path_{ch}"] = str(p)
        rows.append(row)
    idx = tmp_path / "index.parquet"
    pd.DataFrame(rows).to_parquet(idx)
    return idx


def _feats(out):
    return pd.read_parquet(out).set_index("Metadata_Well").filter(regex="^(DNA|ER)_")


@pytest.mark.parametrize("kind,args", [("pixel", ["--size", "4"]), ("deep", DEEP)])
def test_d2_nan_image_is_a_bad_site_not_a_poisoned_plate(tmp_path, capsys, kind, args):
    idx = _plate(tmp_path, {"A02": lambda im: np.full(im.shape, np.nan, np.float32)})
    out = tmp_path / "o.parquet"
    assert run_cli(["extract", kind, idx, "-o", out, *args]) == 2  # --on-error fail: one line naming the site
    err = capsys.readouterr().err
    assert "P1/A02/1" in err and "non-finite" in err and "Traceback" not in err
    assert run_cli(["extract", kind, idx, "-o", out, *args, "--on-error", "skip"]) == 0
    f = _feats(out)
    assert sorted(f.index) == ["A01", "A03", "A04"] and np.isfinite(f.to_numpy()).all()
    assert json.loads((tmp_path / "o.manifest.json").read_text())["errors"] == 1


def test_d2_classical_constant_image_is_a_bad_site(tmp_path, capsys):
    idx = _plate(tmp_path, {"A02": lambda im: np.zeros_like(im)})
    assert run_cli(["extract", "classical", idx, "-o", tmp_path / "cl", "--features", "intensity"]) == 2
    err = capsys.readouterr().err
    assert "P1/A02/1" in err and "constant" in err and "Traceback" not in err


@pytest.mark.parametrize("kind,args", [("pixel", ["--size", "4"]), ("deep", DEEP)])
def test_d3_odd_dtype_files_leave_the_plate_scaling_alone(tmp_path, capsys, kind, args):
    """A uint8 and a float [0, 1] copy of two DNA images: plate scaling and bitdepth scaling give (nearly) the
    numbers of the clean uint16 plate, and the mixed plate is named in one line and in the manifest."""
    clean = _plate(tmp_path / "clean")
    odd = _plate(tmp_path / "odd", {"A02": lambda im: (im // 257).astype(np.uint8),
                                    "A03": lambda im: (im / 65535.0).astype(np.float32)})
    for scaling in ("plate", "bitdepth"):
        a, b = tmp_path / f"clean_{scaling}.parquet", tmp_path / f"odd_{scaling}.parquet"
        common = [*args, "--scaling", scaling] + (["--scaling-sites", "4"] if scaling == "plate" else [])
        assert run_cli(["extract", kind, clean, "-o", a, *common]) == 0
        capsys.readouterr()
        assert run_cli(["extract", kind, odd, "-o", b, *common]) == 0
        err = capsys.readouterr().err
        assert "mixing image dtypes" in err and "P1" in err
        man = json.loads(b.with_name(b.name.replace(".parquet", ".manifest.json")).read_text())
        assert man["mixed_dtype_plates"] == {"P1": ["float32", "uint16", "uint8"]}
        fa, fb = _feats(a), _feats(b)
        untouched = ["A01", "A04"]
        np.testing.assert_allclose(fb.loc[untouched].to_numpy(), fa.loc[untouched].to_numpy(), atol=0.03)
        dna = [c for c in fa.columns if c.startswith("DNA_")]
        for well in ("A02", "A03"):  # the odd files themselves: on the clean file's scale
            assert abs(fb.loc[well, dna].mean() - fa.loc[well, dna].mean()) < 0.03 * (abs(fa.loc[well, dna].mean()) + 1e-3) + 0.01
