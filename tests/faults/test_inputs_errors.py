"""Issue 15, items 8 and 9: silent data problems made loud, and one-line errors instead of "internal error".

Each test is the regression test of one defect; plates are a few 32x32 TIFFs so the file runs in seconds.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import one_line_error, run_cli
from stratonet.core.errors import StratoNetError



def blobs(rng, size=32, n=3, peak=3000, base=200, dtype=np.uint16):
    """A plane with ``n`` bright round nuclei on a dim background."""
    yy, xx = np.mgrid[:size, :size]
    img = np.full((size, size), float(base)) + rng.normal(0, base * 0.02, (size, size))
    for cy, cx in rng.uniform(7, size - 7, (n, 2)):
        img += peak * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 2.5 ** 2))
    return np.clip(img, 0, np.iinfo(dtype).max).astype(dtype)


def write_plate(folder: Path, wells=("A01", "A02", "B01", "B02"), channels=("DNA", "AGP"), size=32,
                labels=None) -> Path:
    """An index (Parquet) of tiny uint16 sites; ``labels`` (one per well) fills Metadata_pert_iname."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, w in enumerate(wells):
        row = {"Metadata_Plate": "P1", "Metadata_Well": w, "Metadata_Site": 1,
               "Metadata_pert_iname": labels[i] if labels else ("DMSO" if i % 2 else "drugX")}
        for ch in channels:
            p = folder / f"{w}_{ch}.tiff"
            tifffile.imwrite(p, blobs(rng, size))
            row[f"Path_{ch}"] = str(p)
        rows.append(row)
    out = folder / "index.parquet"
    pd.DataFrame(rows).to_parquet(out)
    return out


# --- item 9: wrong labels on errors ----------------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(tmp_path, capsys):
    idx = write_plate(tmp_path / "plate")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert run_cli(["extract", "pixel", idx, "-o", ro / "sub" / "pixel.parquet", "--size", 4]) == 2
    finally:
        ro.chmod(0o700)
    one_line_error(capsys, str(ro / "sub"), "permission denied")


def test_read_only_file_system(tmp_path, capsys, monkeypatch):
    """EROFS (a read-only mount), simulated for every mkdir below the output folder (root ignores chmod)."""
    idx = write_plate(tmp_path / "plate")
    ro = tmp_path / "ro"
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if str(self).startswith(str(ro)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert run_cli(["extract", "pixel", idx, "-o", ro / "pixel.parquet", "--size", 4]) == 2
    one_line_error(capsys, str(ro), "read-only file system")


def _full_disk(monkeypatch):
    """Fault hook: every Parquet write (DataFrame.to_parquet, pyarrow's write_table) writes a few bytes, then fails
    with ENOSPC (as a full disk does)."""
    import pyarrow.parquet as pq

    def fail(path):
        with open(path, "wb") as fh:
            fh.write(b"PAR1 half a part")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", lambda self, path, *a, **k: fail(path))
    monkeypatch.setattr(pq, "write_table", lambda table, where, *a, **k: fail(where))


@pytest.mark.parametrize("kind,on_error", [("pixel", "fail"), ("classical", "fail")])
def test_full_disk_one_line_no_tmp_left_and_rerun_works(kind, on_error, tmp_path, capsys, monkeypatch):
    """ENOSPC stops the run with one line (even with --on-error skip: a full disk is not a bad site)."""
    idx = write_plate(tmp_path / "plate")
    out = tmp_path / "full" / ("pixel.parquet" if kind == "pixel" else "classical")
    argv = ["extract", kind, idx, "-o", out, "--on-error", on_error] + (
        ["--size", 4] if kind == "pixel" else ["--features", "intensity", "--nuclei-diameter", "2,20"])
    with monkeypatch.context() as m:
        _full_disk(m)
        assert run_cli(argv) == 2
    err = one_line_error(capsys, "no space left on device", str(tmp_path / "full"))
    assert "Logging error" not in err
    left = [p for p in (tmp_path / "full").rglob("*") if p.name.endswith(".tmp")]
    assert left == [], left
    assert run_cli(argv) == 0  # the disk has room again: the rerun completes
    table = out if kind == "pixel" else out / "site.parquet"
    assert len(pd.read_parquet(table)) == 4


def test_full_disk_is_not_recorded_as_a_bad_site(tmp_path, monkeypatch):
    """With --on-error skip, ENOSPC while flushing stops the run at once; it is not filed as a failed site while
    the remaining sites are processed for nothing."""
    import stratonet.runtime.classical_run as classical
    from stratonet.extract.classical.segment import SegmentParams
    from stratonet.core.errors import OutputError

    idx = pd.read_parquet(write_plate(tmp_path / "plate", wells=("A01", "A02", "A03")))
    cfg = classical.ClassicalConfig(groups=["intensity"],
                                    segment=SegmentParams(nuclei_min_diameter=2, nuclei_max_diameter=20))
    processed = []
    real_process_site = classical.process_site
    monkeypatch.setattr(classical, "process_site", lambda row, *a, **k: processed.append(row["Metadata_Well"])
                        or real_process_site(row, *a, **k))
    _full_disk(monkeypatch)
    with pytest.raises(OutputError, match="no space left"):
        classical.extract_classical(idx, tmp_path / "cl", cfg, on_error="skip", flush_every=1, progress=False)
    assert processed == ["A01"]
    assert not (tmp_path / "cl" / "errors.csv").exists()


def test_full_disk_in_run_log_is_one_warning(tmp_path, capsys):
    from stratonet.core.progress import get_logger, log_to_file

    path = log_to_file(tmp_path / "stratonet.log")
    logger = get_logger()
    handler = next(h for h in logger.handlers if getattr(h, "baseFilename", None) == str(path.resolve()))

    class Full:
        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self):
            pass

    handler.stream = Full()
    try:
        for i in range(5):
            logger.warning("record %d", i)
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err
    assert err.count("cannot write the run log") == 1, err


def test_yaml_wrong_type(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("synth:\n  wells: [1, 2]\n")
    assert run_cli(["--config", cfg, "synth", tmp_path / "p"]) == 2
    one_line_error(capsys, str(cfg), "'wells'", "got a list")
    cfg.write_text("synth:\n  wells: {a: 1}\n")
    assert run_cli(["--config", cfg, "synth", tmp_path / "p"]) == 2
    one_line_error(capsys, "'wells'", "got a mapping")


def test_yaml_not_utf8(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(b"synth:\n  plate: \xff\xfeP1\n")
    assert run_cli(["--config", cfg, "synth", tmp_path / "p"]) == 2
    one_line_error(capsys, str(cfg), "not UTF-8", "0xff")


def test_yaml_accepts_cli_option_names():
    import click

    from stratonet.cli import cli
    from stratonet.core.config import to_default_map

    data = {"profile": {"aggregate": "site", "normalize": "standardize", "spherize": True, "corr-threshold": 0.8},
            "extract": {"deep": {"batch-size": 8, "compile": False}, "classical": {"workers": 2}},
            "index": {"source": "jump"}}
    dm = to_default_map(cli, data, "c.yaml")
    assert dm["profile"] == {"level": "site", "method": "standardize", "do_spherize": True, "corr_threshold": 0.8}
    assert dm["extract"]["deep"] == {"batch_size": 8, "compile_": False}
    assert dm["index"] == {"source_name": "jump"}
    # internal names keep working; giving both spellings of one option is refused
    assert to_default_map(cli, {"profile": {"level": "well"}}, "c.yaml")["profile"] == {"level": "well"}
    with pytest.raises(StratoNetError, match="given twice"):
        to_default_map(cli, {"profile": {"level": "well", "aggregate": "site"}}, "c.yaml")
    with pytest.raises(StratoNetError, match="unknown option 'aggregat'.*aggregate"):
        to_default_map(cli, {"profile": {"aggregat": "site"}}, "c.yaml")
    assert isinstance(cli, click.Group)


def test_yaml_cli_names_reach_the_command(tmp_path):
    """--aggregate given as 'aggregate' in YAML changes what profile does."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": ["A01", "A01", "A02", "A02"],
                       "Metadata_Site": [1, 2, 1, 2], "f1": rng.normal(size=4), "f2": rng.normal(size=4)})
    df.to_parquet(tmp_path / "f.parquet")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("profile:\n  aggregate: well\n  normalize: none\n  select: none\n")
    assert run_cli(["--config", cfg, "profile", tmp_path / "f.parquet", "-o", tmp_path / "p.parquet"]) == 0
    assert len(pd.read_parquet(tmp_path / "p.parquet")) == 2


def test_batch_size_zero(tmp_path, capsys):
    idx = write_plate(tmp_path / "plate")
    assert run_cli(["extract", "deep", idx, "-o", tmp_path / "d.parquet", "--batch-size", 0]) == 2
    assert "--batch-size" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("extract:\n  deep:\n    batch-size: 0\n")
    assert run_cli(["--config", cfg, "extract", "deep", idx, "-o", tmp_path / "d.parquet"]) == 2
    one_line_error(capsys, "'batch-size'", "0 is not in the range")
    from stratonet.runtime import extract_deep

    with pytest.raises(StratoNetError, match="batch-size must be >= 1"):
        extract_deep(idx, tmp_path / "d.parquet", batch_size=0, workers=0, progress=False)


def test_train_treatment_on_tiny_data(tmp_path, capsys):
    idx = write_plate(tmp_path / "plate", wells=("A01", "A02", "A03", "A04", "A05", "A06"),
                      labels=["DMSO"] * 4 + ["drugX", "drugY"])
    common = ["--model", "cnn3", "--size", 16, "--crop", 12, "--epochs", 1]
    assert run_cli(["train", "treatment", idx, "-o", tmp_path / "run"] + common) == 2
    one_line_error(capsys, "too little data for a group-aware split", "--group-by none")
    two = write_plate(tmp_path / "two", wells=("A01", "A02"), labels=["DMSO", "drugX"])
    assert run_cli(["train", "treatment", two, "-o", tmp_path / "run2", "--group-by", "none"] + common) == 2
    one_line_error(capsys, "every class has a single sample")


def test_deep_errors_csv_is_updated_after_a_successful_retry(tmp_path):
    from stratonet.runtime import extract_deep

    idx = pd.read_parquet(write_plate(tmp_path / "plate"))
    gone = Path(idx.loc[1, "Path_AGP"])
    saved = gone.read_bytes()
    gone.unlink()
    out = tmp_path / "deep.parquet"
    fast = dict(model="stratonet18", input_size=32, workers=0, progress=False, on_error="skip")
    man = extract_deep(idx, out, **fast)
    errors_csv = Path(man["errors_file"])
    assert errors_csv.name == "deep.errors.csv" and len(pd.read_csv(errors_csv)) == 1
    gone.write_bytes(saved)
    man = extract_deep(idx, out, **fast)
    assert man["sites_processed"] == 1 and man["errors"] == 0
    assert not errors_csv.exists() and not errors_csv.with_suffix(".parquet").exists()
    assert len(pd.read_parquet(out)) == 4


# --- item 8: silent data problems ----------------------------------------------------------------------------

def _site_row(folder: Path, well: str, planes: dict) -> dict:
    row = {"Metadata_Plate": "P1", "Metadata_Well": well, "Metadata_Site": 1}
    for ch, img in planes.items():
        p = folder / f"{well}_{ch}.tiff"
        tifffile.imwrite(p, img)
        row[f"Path_{ch}"] = str(p)
    return row


def test_classical_scales_by_file_dtype_not_by_the_sites_brightest_pixel(tmp_path):
    """A dim uint16 site (max < 256) and a uint8 site, and a site mixing both: each plane / its dtype's maximum."""
    from stratonet.extract.classical.segment import SegmentParams
    from stratonet.extract.classical.run import ClassicalConfig, process_site

    rng = np.random.default_rng(1)
    dim16 = blobs(rng, 48, peak=180, base=20, dtype=np.uint16)
    bright8 = blobs(rng, 48, peak=200, base=10, dtype=np.uint8)
    rows = [_site_row(tmp_path, "A01", {"DNA": dim16, "AGP": dim16}),
            _site_row(tmp_path, "A02", {"DNA": bright8, "AGP": bright8}),
            _site_row(tmp_path, "A03", {"DNA": bright8, "AGP": dim16})]
    cfg = ClassicalConfig(groups=["intensity"], segment=SegmentParams(nuclei_min_diameter=2, nuclei_max_diameter=30))
    got = [process_site(r, ["DNA", "AGP"], cfg) for r in rows]
    for res, dna, agp in zip(got, (dim16, bright8, bright8), (dim16, bright8, dim16)):
        med = res["median"]
        assert res["median"]["Count_Nuclei"].iloc[0] >= 1
        top_dna = med["Nuclei_Intensity_MaxIntensity_DNA"].iloc[0]
        assert 0 < top_dna <= dna.max() / np.iinfo(dna.dtype).max + 1e-6
        assert top_dna > 0.5 * dna.max() / np.iinfo(dna.dtype).max
        top_agp = med["Nuclei_Intensity_MaxIntensity_AGP"].iloc[0]
        assert 0.5 * agp.max() / np.iinfo(agp.dtype).max < top_agp <= agp.max() / np.iinfo(agp.dtype).max + 1e-6
    assert got[0]["dtypes"] == ["uint16"] and got[2]["dtypes"] == ["uint16", "uint8"]
    # an explicit bit depth is applied to every file alike
    res12 = process_site(rows[0], ["DNA", "AGP"], ClassicalConfig(groups=["intensity"], bit_depth=12,
                                                                  segment=cfg.segment))
    ratio = res12["median"]["Nuclei_Intensity_MaxIntensity_DNA"].iloc[0] / \
        got[0]["median"]["Nuclei_Intensity_MaxIntensity_DNA"].iloc[0]
    assert ratio == pytest.approx(65535 / 4095, rel=1e-4)


def test_classical_records_intensity_scale_in_provenance(tmp_path):
    from stratonet.core.tables import read_provenance

    idx = write_plate(tmp_path / "plate", wells=("A01", "A02"))
    out = tmp_path / "cl"
    assert run_cli(["extract", "classical", idx, "-o", out, "--features", "intensity", "--nuclei-diameter", "2,20",
                    "--bit-depth", "16"]) == 0
    prov = read_provenance(out / "site.parquet")
    assert prov["intensity_scale"]["bit_depth"] == 16 and prov["intensity_scale"]["file_dtypes"] == ["uint16"]


def test_float_images_with_unknown_scale_are_refused(tmp_path):
    from stratonet.images.io import load_index_row

    # not constant: a constant image is a bad site before its scale is asked (issue 27, D2)
    row = _site_row(tmp_path, "A01", {"DNA": np.linspace(250.0, 300.0, 64, dtype=np.float32).reshape(8, 8)})
    with pytest.raises(StratoNetError, match="A01_DNA.tiff.*bit depth"):
        load_index_row(row, ["DNA"], bit_depth="auto")
    assert load_index_row(row, ["DNA"], bit_depth=16).max() == pytest.approx(300 / 65535)


def _loaddata(folder: Path, wells=("A01", "A02"), drop=(), stack=None) -> Path:
    """A LoadData CSV over tiny uint16 TIFFs; ``drop`` removes columns; ``stack`` replaces A02's DNA file."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for w in wells:
        row = {"Metadata_Plate": "P1", "Metadata_Well": w, "Metadata_Site": 1}
        for ch in ("DNA", "AGP"):
            name = f"{w}_{ch}.tiff"
            img = stack if (stack is not None and w == wells[-1] and ch == "DNA") else blobs(rng, 16)
            rgb = img.ndim == 3 and img.shape[-1] in (3, 4)
            tifffile.imwrite(folder / name, img, photometric="rgb" if rgb else "minisblack")
            row[f"FileName_Orig{ch}"] = name
            row[f"PathName_Orig{ch}"] = str(folder)
        rows.append(row)
    path = folder / "load_data.csv"
    pd.DataFrame(rows).drop(columns=list(drop)).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("well,fmt,needle", [("Z99", "auto", "outside every plate format"),
                                             ("A13", "96", "not on a 96-well plate"),
                                             ("Q01", "384", "not on a 384-well plate")])
def test_wells_outside_the_plate_format_are_refused(tmp_path, capsys, well, fmt, needle):
    ld = _loaddata(tmp_path / "p", wells=("A01", well))
    assert run_cli(["index", ld, "-o", tmp_path / "i.parquet", "--plate-format", fmt]) == 2
    one_line_error(capsys, "plate P1", f"well {well}", needle)


def test_plate_format_inferred_per_plate():
    from stratonet.index.plate_format import check_wells

    df = pd.DataFrame({"Metadata_Plate": ["a", "a", "b", "c"], "Metadata_Well": ["A01", "H12", "A13", "AF48"]})
    assert check_wells(df) == {"a": 96, "b": 384, "c": 1536}
    with pytest.raises(StratoNetError, match="well 'A00' is not a well name"):
        check_wells(pd.DataFrame({"Metadata_Plate": ["a"], "Metadata_Well": ["A00"]}))


def test_loaddata_missing_filename_column_is_said(tmp_path, capsys):
    ld = _loaddata(tmp_path / "p", drop=["FileName_OrigAGP"])
    assert run_cli(["index", ld, "-o", tmp_path / "i.parquet"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "FileName_OrigAGP" in err and "AGP left out" in err, err
    assert "Path_AGP" not in pd.read_parquet(tmp_path / "i.parquet").columns


def test_loaddata_missing_site_column_is_said(tmp_path, capsys):
    ld = _loaddata(tmp_path / "p", drop=["Metadata_Site"])
    assert run_cli(["index", ld, "-o", tmp_path / "i.parquet"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "no Metadata_Site column" in err and "numbered 1, 2" in err, err


@pytest.mark.parametrize("kind", ["zstack", "rgb"])
def test_index_refuses_stack_or_rgb_files(tmp_path, capsys, kind):
    img = np.zeros((3, 16, 16), np.uint16) if kind == "zstack" else np.zeros((16, 16, 3), np.uint8)
    ld = _loaddata(tmp_path / "p", stack=img)
    assert run_cli(["index", ld, "-o", tmp_path / "i.parquet"]) == 2
    err = one_line_error(capsys, "site P1/A02/1", "A02_DNA.tiff", "one 2-D plane")
    assert ("RGB" in err) == (kind == "rgb")


def _profiles(n=24, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": [f"A{i % 12 + 1:02d}" for i in range(n)],
                       "Metadata_Site": [i // 12 + 1 for i in range(n)],
                       "Metadata_control_type": ["negcon" if i % 4 == 0 else "trt" for i in range(n)],
                       "Metadata_moa": [f"m{i % 3}" for i in range(n)]})
    for j in range(4):
        df[f"f{j}"] = rng.normal(size=n)
    return df


def test_profile_warns_about_text_columns_and_refuses_zero_features(tmp_path, capsys):
    df = _profiles()
    df["Plate_Barcode"] = "BR1"
    df["Note"] = "x"
    df.to_parquet(tmp_path / "f.parquet")
    assert run_cli(["profile", tmp_path / "f.parquet", "-o", tmp_path / "p.parquet", "--aggregate", "none"]) == 0
    err = capsys.readouterr().err
    assert "warning: 2 non-numeric column(s) left out" in err and "Plate_Barcode, Note" in err, err
    for j in range(4):
        df[f"f{j}"] = 1.0
    df.to_parquet(tmp_path / "const.parquet")
    assert run_cli(["profile", tmp_path / "const.parquet", "-o", tmp_path / "c.parquet", "--aggregate", "none"]) == 2
    one_line_error(capsys, "left 0 of 4 features")
    assert not (tmp_path / "c.parquet").exists()


def test_classify_warns_about_text_columns(tmp_path, capsys):
    df = _profiles()
    df["Comment"] = "x"
    df.to_parquet(tmp_path / "f.parquet")
    assert run_cli(["evaluate", "classify", tmp_path / "f.parquet", "-o", tmp_path / "run", "--label",
                    "Metadata_moa", "--cv", 0, "--classifiers", "logreg"]) == 0
    assert "warning: 1 non-numeric column(s) left out of the features: Comment" in capsys.readouterr().err


def test_inf_in_profile_and_classify_names_the_column(tmp_path, capsys):
    df = _profiles()
    df.loc[3, "f2"] = np.inf
    df.loc[[4, 5], "f0"] = -np.inf
    df.to_parquet(tmp_path / "inf.parquet")
    # profile sets ±inf to NaN (issue 10's policy) and names the columns in a warning
    assert run_cli(["profile", tmp_path / "inf.parquet", "-o", tmp_path / "p.parquet", "--aggregate", "none",
                    "--select", "none"]) == 0
    said = capsys.readouterr()
    assert "±inf in 2 feature column(s) set to NaN: f0 (2), f2 (1)" in " ".join((said.out + said.err).split())
    assert run_cli(["evaluate", "classify", tmp_path / "inf.parquet", "-o", tmp_path / "run", "--label",
                    "Metadata_moa", "--cv", 2, "--classifiers", "logreg"]) == 2
    one_line_error(capsys, "f0", "f2", "infinite")


def test_check_finite_helper():
    from stratonet.core.tables import check_finite

    df = pd.DataFrame({"a": [1.0, np.nan], "b": [1e39, 0.0], "c": ["x", "y"]})
    check_finite(df, ["a", "b"], "t")  # NaN allowed, 1e39 is finite in float64
    with pytest.raises(StratoNetError, match="t: ±inf or NaN in 1 feature column.*a \\(1 row\\)"):
        check_finite(df, ["a"], "t", allow_nan=False)
    with pytest.raises(StratoNetError, match="beyond float32.*b \\(1 row\\)"):
        check_finite(df, ["a", "b"], "t", dtype=np.float32)


def test_unparseable_well_names_the_loaddata_file(tmp_path, capsys):
    ld = _loaddata(tmp_path / "p", wells=("A01", "well-7"))
    assert run_cli(["index", ld, "-o", tmp_path / "i.parquet"]) == 2
    one_line_error(capsys, str(ld), "Metadata_Well", "well-7")
