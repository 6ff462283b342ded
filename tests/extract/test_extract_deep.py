"""`stratonet extract deep`: real JUMP FOV, channel errors, determinism, resume, modes, array stacks, preprocessing."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_cli
from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.extract.deep.cells import otsu_centers
from stratonet.extract.deep.run import manifest_path
from stratonet.runtime import extract_deep
from stratonet.images.transforms import channel_percentiles, rescale_to_unit
from stratonet.images.preprocess import rescale_percentile
from stratonet.core.tables import feature_columns, read_provenance

FAST = dict(model="stratonet18", input_size=64, workers=0, progress=False)


def blob_image(rng, size=96, n=6):
    """uint16 plane with ``n`` bright Gaussian blobs; returns (image, centres yx)."""
    yy, xx = np.mgrid[:size, :size]
    img = rng.normal(300, 20, (size, size))
    centres = rng.uniform(12, size - 12, (n, 2))
    for cy, cx in centres:
        img += 5000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 3.0 ** 2))
    return np.clip(img, 0, 65535).astype(np.uint16), centres


@pytest.fixture
def small_index(tmp_path):
    """4 sites x 2 channels (DNA, ER) of 96x96 uint16 TIFFs, with treatment metadata."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(4):
        row = {"Metadata_Plate": "P1", "Metadata_Well": f"A0{s + 1}", "Metadata_Site": 1,
               "Metadata_pert_iname": "DMSO" if s % 2 else "drugX", "Metadata_moa": "control" if s % 2 else "x"}
        for ch in ("DNA", "ER"):
            img, _ = blob_image(rng)
            p = tmp_path / "img" / f"s{s}_{ch}.tiff"
            p.parent.mkdir(exist_ok=True)
            tifffile.imwrite(p, img)
            row[f"Path_{ch}"] = str(p)
        rows.append(row)
    idx = pd.DataFrame(rows)
    path = tmp_path / "index.parquet"
    idx.to_parquet(path)
    return path


def jump_index(jump_fov):
    orig = jump_fov / "images" / "orig"
    return pd.DataFrame([{
        "Metadata_Plate": "BR00117006", "Metadata_Well": "A01", "Metadata_Site": 1,
        "Path_AGP": str(orig / "r01c01f01p01-ch2sk1fk1fl1.tiff"),
        "Path_RNA": str(orig / "r01c01f01p01-ch3sk1fk1fl1.tiff"),
        "Path_DNA": str(orig / "r01c01f01p01-ch5sk1fk1fl1.tiff"),
    }])


def test_real_jump_fov_cli(jump_fov, tmp_path, capsys):
    idx = tmp_path / "jump.parquet"
    jump_index(jump_fov).to_parquet(idx)
    out = tmp_path / "feat" / "deep.parquet"
    rc = run_cli(["extract", "deep", idx, "-o", out, "--model", "stratonet18", "--input-size", "64",
                  "--workers", "0"])
    assert rc == 0, capsys.readouterr().err
    df = pd.read_parquet(out)
    feats = feature_columns(df)
    assert len(df) == 1 and {c.split("_")[0] for c in feats} == {"DNA", "AGP", "RNA"}
    assert len(feats) == 3 * (256 * 3) and "DNA_high_0255" in feats and "DNA_low_0000" in feats
    assert np.isfinite(df[feats].to_numpy()).all() and df[feats].to_numpy().std() > 0
    prov = read_provenance(out)
    assert prov["feature_set"] == "deep" and prov["model"] == "stratonet18"
    assert prov["weights"] == "untrained (seed 0)"
    man = json.loads(manifest_path(out).read_text())
    assert man["channel_images"] == 3 and man["channel_images_per_s"] > 0
    assert {"cpu_pct_avg", "cpu_pct_max", "mem_pct_avg", "mem_pct_max"} <= set(man["resources"])
    assert man["model_card"]["weights"] == "untrained (seed 0)" and man["packages"]["torch"]
    assert (tmp_path / "feat" / "extract_deep.config.yaml").exists()
    assert "untrained (seed 0)" in capsys.readouterr().err
    assert man["config"]["decode_thread"] == "auto"  # the default with no worker process: chosen by load
    assert man["config"]["decode"].startswith("auto on ")
    # --decode-in-line: the same features, decoded between batches (recorded in the manifest)
    inline = tmp_path / "inline" / "deep.parquet"
    assert run_cli(["extract", "deep", idx, "-o", inline, "--model", "stratonet18", "--input-size", "64",
                    "--workers", "0", "--decode-in-line"]) == 0
    assert json.loads(manifest_path(inline).read_text())["config"]["decode_thread"] is False
    assert pd.read_parquet(inline)[feats].equals(df[feats])


def test_missing_channel_is_one_line_error(small_index, tmp_path, capsys):
    rc = run_cli(["extract", "deep", small_index, "-o", tmp_path / "d.parquet", "--channels", "DNA,Mito"])
    err = capsys.readouterr().err
    assert rc != 0 and "['Mito'] not in the index" in err and "index.parquet" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_channel_subset_and_metadata(small_index, tmp_path):
    out = tmp_path / "d.parquet"
    extract_deep(small_index, out, channels=["ER"], **FAST)
    df = pd.read_parquet(out)
    assert {c.split("_")[0] for c in feature_columns(df)} == {"ER"}
    assert {"Metadata_pert_iname", "Metadata_moa"} <= set(df.columns) and len(df) == 4


def test_bit_identical_features(small_index, tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    extract_deep(small_index, a, **FAST)
    extract_deep(small_index, b, **{**FAST, "workers": 1})  # worker processes do the preprocessing
    fa, fb = pd.read_parquet(a), pd.read_parquet(b)
    cols = feature_columns(fa)
    assert np.array_equal(fa[cols].to_numpy(), fb[cols].to_numpy())
    # workers=0 decodes on threads, chosen by load by default; in line and ahead give the same features
    for decode in (False, True):
        other = tmp_path / f"decode_{decode}.parquet"
        man = extract_deep(small_index, other, **{**FAST, "decode_thread": decode})
        assert man["config"]["decode_thread"] is decode
        assert man["config"]["decode"].startswith("ahead" if decode else "in line")
        assert np.array_equal(fa[cols].to_numpy(), pd.read_parquet(other)[cols].to_numpy())
    # another seed gives other features
    c = tmp_path / "c.parquet"
    extract_deep(small_index, c, **{**FAST, "seed": 1})
    assert not np.array_equal(fa[cols].to_numpy(), pd.read_parquet(c)[cols].to_numpy())


def test_resume_after_interrupted_run(small_index, tmp_path):
    idx = pd.read_parquet(small_index)
    broken = idx.copy()
    broken.loc[2, "Path_DNA"] = str(tmp_path / "missing.tiff")
    out = tmp_path / "r.parquet"
    # one site per batch, one part per site; per-image scaling (plate scaling would read the missing file first)
    kw = {**FAST, "batch_size": 2, "rows_per_part": 1, "scaling": "image"}
    with pytest.raises(StratoNetError, match="missing.tiff"):
        extract_deep(broken, out, **kw)
    parts = sorted((tmp_path / "r.parquet.parts").glob("part-*.parquet"))
    assert len(parts) == 2 and not out.exists()  # what was flushed before the failure is kept
    # a rerun with another configuration is refused rather than mixed in
    with pytest.raises(ConfigError, match="different configuration"):
        extract_deep(idx, out, **{**kw, "seed": 7})
    man = extract_deep(idx, out, **kw)
    assert man["sites_resumed"] == 2 and man["sites_processed"] == 2
    done = pd.read_parquet(out).sort_values("Metadata_Well")
    assert list(done["Metadata_Well"]) == ["A01", "A02", "A03", "A04"]
    assert read_provenance(out)["weights"] == "untrained (seed 0)"
    fresh = tmp_path / "fresh.parquet"
    extract_deep(idx, fresh, **kw)
    cols = feature_columns(done)
    ref = pd.read_parquet(fresh).sort_values("Metadata_Well")
    assert np.allclose(done[cols].to_numpy(), ref[cols].to_numpy(), atol=1e-5)
    # a finished run resumes to nothing
    assert extract_deep(idx, out, **kw)["sites_processed"] == 0
    # no stray resume file once the table is final; the table itself still refuses another configuration
    assert not list(tmp_path.glob("*.resume.json"))
    with pytest.raises(ConfigError, match="different configuration"):
        extract_deep(idx, out, **{**kw, "seed": 7})


def test_skip_records_bad_sites(small_index, tmp_path):
    idx = pd.read_parquet(small_index)
    idx.loc[1, "Path_ER"] = str(tmp_path / "gone.tiff")
    out = tmp_path / "s.parquet"
    man = extract_deep(idx, out, on_error="skip", **FAST)
    assert man["errors"] == 1 and len(pd.read_parquet(out)) == 3
    errs = pd.read_csv(man["errors_file"])
    assert errs["site"].tolist() == ["P1/A02/1"] and "gone.tiff" in errs["error"].iloc[0]


def test_tiles_and_cells_modes(tmp_path):
    rng = np.random.default_rng(1)
    dna, centres = blob_image(rng, size=128, n=5)
    er, _ = blob_image(rng, size=128, n=5)
    tifffile.imwrite(tmp_path / "dna.tif", dna)
    tifffile.imwrite(tmp_path / "er.tif", er)
    idx = pd.DataFrame([{"Metadata_Plate": "P", "Metadata_Well": "B02", "Metadata_Site": 3,
                         "Path_DNA": str(tmp_path / "dna.tif"), "Path_ER": str(tmp_path / "er.tif")}])
    extract_deep(idx, tmp_path / "t.parquet", mode="tiles", tile_size=64, **FAST)
    assert pd.read_parquet(tmp_path / "t.parquet")["Metadata_Tile_Count"].tolist() == [4]
    table = pd.DataFrame({"Metadata_Plate": "P", "Metadata_Well": "B02", "Metadata_Site": 3,
                          "Nuclei_Location_Center_X": centres[:, 1], "Nuclei_Location_Center_Y": centres[:, 0]})
    table.to_csv(tmp_path / "Nuclei.csv", index=False)
    man = extract_deep(idx, tmp_path / "c.parquet", mode="cells", crop_size=32, centers=tmp_path / "Nuclei.csv",
                       **FAST)
    site = pd.read_parquet(tmp_path / "c.parquet")
    cells = pd.read_parquet(man["cells_output"])
    cols = feature_columns(site)
    assert len(cells) == 5 and site["Metadata_Cell_Count"].tolist() == [5]
    assert np.allclose(cells[cols].mean().to_numpy(), site[cols].to_numpy()[0], atol=1e-5)
    assert np.allclose(np.sort(cells["Metadata_Location_Center_X"]), np.sort(centres[:, 1]))
    # without a table, the Otsu fallback finds the blobs on DNA
    man2 = extract_deep(idx, tmp_path / "o.parquet", mode="cells", crop_size=32, channels=["ER"], **FAST)
    assert 3 <= len(pd.read_parquet(man2["cells_output"])) <= 5


def test_array_stack_index(tmp_path):
    rng = np.random.default_rng(2)
    rows = []
    for k in range(3):
        p = tmp_path / f"crop{k}.npy"
        np.save(p, rng.integers(0, 4000, (3, 48, 48)).astype(np.uint16))
        rows.append({"Metadata_Plate": "P", "Metadata_Well": "C03", "Metadata_Site": 1, "Metadata_ObjectNumber": k,
                     "Path_Stack": str(p), "Stack_Channels": "DNA|RNA|AGP"})
    out = tmp_path / "stack.parquet"
    extract_deep(pd.DataFrame(rows), out, channels=["AGP", "DNA"], **FAST)
    df = pd.read_parquet(out)
    assert len(df) == 3 and {c.split("_")[0] for c in feature_columns(df)} == {"AGP", "DNA"}


def test_fast_percentiles_match_numpy():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 65535, (200, 300)).astype(np.uint16)
    for q in [(0.1, 99.9), (0, 100), (2.5, 97.5)]:
        assert np.allclose(channel_percentiles(img, *q), np.percentile(img, q), rtol=0, atol=1e-6)
        assert np.allclose(channel_percentiles(img.astype(np.float32) + 0.25, *q),
                           np.percentile(img.astype(np.float32) + 0.25, q), atol=1e-3)
    stack = np.stack([img, np.full_like(img, 7)])
    assert np.allclose(rescale_to_unit(stack).numpy(), rescale_percentile(stack.astype(np.float32)), atol=1e-6)


def test_otsu_centers_finds_blobs():
    img, centres = blob_image(np.random.default_rng(4), size=128, n=4)
    found = otsu_centers(img)
    assert 3 <= len(found) <= 4
    d = np.min(np.linalg.norm(found[:, None] - centres[None], axis=2), axis=1)
    assert (d < 2).all()


def test_demo_stage_extract_deep(small_index, jump_fov, tmp_path):
    from stratonet.demo.pipeline import DemoContext, stage_extract_deep

    real = tmp_path / "real.parquet"
    jump_index(jump_fov).to_parquet(real)
    ctx = DemoContext(out=tmp_path / "demo", synth_index=small_index, real_index=real)
    stage_extract_deep(ctx, input_size=64, baseline_model="stratonet18")  # the demo runs native size, stratonet50
    assert ctx.features["deep"] == tmp_path / "demo" / "features" / "deep.parquet"
    assert len(pd.read_parquet(ctx.features["deep"])) == 4
    real_feats = pd.read_parquet(tmp_path / "demo" / "features" / "deep_real.parquet")
    assert {c.split("_")[0] for c in feature_columns(real_feats)} == {"AGP", "RNA", "DNA"}
    assert read_provenance(ctx.features["deep"])["weights"].startswith("efficientnet_lite0.in1k (sha256 ")
    assert read_provenance(ctx.features["deep"])["scaling"]["mode"] == "plate"
    assert read_provenance(ctx.features["deep_untrained"])["weights"] == "untrained (seed 0)"
    assert len(pd.read_parquet(ctx.features["deep_untrained"])) == 4


def _fields(tmp_path, sizes):
    """One DNA field per site, of the given (H, W) sizes; returns the index."""
    rng = np.random.default_rng(1)
    rows = []
    for s, (h, w) in enumerate(sizes):
        p = tmp_path / f"f{s}.tiff"
        tifffile.imwrite(p, rng.integers(0, 4000, (h, w)).astype(np.uint16))
        rows.append({"Metadata_Plate": "P1", "Metadata_Well": f"A0{s + 1}", "Metadata_Site": 1, "Path_DNA": str(p)})
    return pd.DataFrame(rows)


@pytest.fixture
def small_model_input(monkeypatch):
    """Pretend the model's input side is 64 px, so that small test fields count as larger than it."""
    from stratonet.extract.deep import run as deep_mod

    orig = deep_mod.native_field_shape
    monkeypatch.setattr(deep_mod, "native_field_shape", lambda rows, ch, size: orig(rows, ch, 64))


def test_whole_fields_keep_their_native_size_by_default(tmp_path, small_model_input):
    """No --input-size: a field at least as large as the model input goes in unresampled, equal to an explicit
    --input-size of its own side; the provenance says so."""
    idx = _fields(tmp_path, [(80, 80), (80, 80)])
    fast = dict(model="stratonet18", workers=0, progress=False, scaling="image")
    man = extract_deep(idx, tmp_path / "native.parquet", **fast, batch_size=8)
    assert man["provenance"]["input_size"] == "native 80x80"
    explicit = extract_deep(idx, tmp_path / "explicit.parquet", **fast, input_size=80, batch_size=8)
    a, b = pd.read_parquet(tmp_path / "native.parquet"), pd.read_parquet(tmp_path / "explicit.parquet")
    cols = feature_columns(a)
    np.testing.assert_array_equal(a[cols].to_numpy(), b[cols].to_numpy())
    assert explicit["provenance"]["input_size"] == 80


def test_native_size_helpers():
    from stratonet.extract.deep.run import native_batch_size

    assert native_batch_size(64, (1080, 1080), 224) == 2  # same pixels per batch as 64 images of 224 px
    assert native_batch_size(64, (200, 200), 224) == 64 and native_batch_size(1, (4000, 4000), 224) == 1


def test_fields_smaller_than_the_model_input_are_resized_up(tmp_path):
    idx = _fields(tmp_path, [(80, 80)])
    man = extract_deep(idx, tmp_path / "small.parquet", model="stratonet18", workers=0, progress=False,
                       scaling="image")
    assert man["provenance"]["input_size"] == 224


def test_native_size_refuses_a_field_of_another_size_by_name(tmp_path, small_model_input):
    idx = _fields(tmp_path, [(72, 72), (72, 64)])
    with pytest.raises(StratoNetError, match=r"A02.*72x64.*72x72.*--input-size"):
        extract_deep(idx, tmp_path / "mixed.parquet", model="stratonet18", workers=0, progress=False,
                     scaling="image")

@pytest.mark.parametrize("scaling", ["plate", "image"])
@pytest.mark.parametrize("illum", [False, True])
def test_plane_at_a_time_decode_equals_the_stacked_path(tmp_path, jump_fov, scaling, illum):
    """``whole`` mode decodes one plane at a time (issue 13: lean decode, strip by strip where the bounds are known
    up front); it must give the tensor of the general path (full (C, H, W) float stack, then rescale and resize)
    within float32 rounding, on the real JUMP FOV at 1080 -> 224."""
    import torch

    from stratonet.extract.deep.dataset import Preprocess, SiteDataset
    from stratonet.images.scaling import ScalingSpec, resolve_scaling

    orig = jump_fov / "images" / "orig"
    chans = ["AGP", "RNA", "DNA"]
    row = {"Metadata_Plate": "P", "Metadata_Well": "A01", "Metadata_Site": 1}
    for ch, c in zip(chans, (2, 3, 5)):
        row[f"Path_{ch}"] = str(orig / f"r01c01f01p01-ch{c}sk1fk1fl1.tiff")
        if illum:
            fn = np.random.default_rng(c).uniform(0.5, 1.5, (1080, 1080)).astype(np.float32)
            np.save(tmp_path / f"illum_{ch}.npy", fn)
            row[f"Illum_{ch}"] = str(tmp_path / f"illum_{ch}.npy")
    scale = resolve_scaling(ScalingSpec(scaling, (0.1, 99.9), sites=4, seed=0, illum=illum), [row], chans,
                            tmp_path / "deep.parquet", log=None, on_error="fail")
    prep = Preprocess(chans, input_size=224, illum=illum, scaling=None if scaling == "image" else scale)
    ds = SiteDataset([row], prep)
    lean = ds._load_whole_planes(row)
    from stratonet.images.transforms import rescale_to_unit, resize_batch
    from stratonet.images.io import load_index_row

    raw = load_index_row(row, chans, illum=illum, dtype=np.float32)
    dtypes = [np.uint16] * len(chans)  # the stored dtype of each file: bounds are per file's dtype (issue 27, D3)
    bounds = prep.scaling.bounds(row, dtypes) if prep.scaling is not None else None
    general = resize_batch(rescale_to_unit(raw, 0.1, 99.9, bounds=bounds)[None], 224)
    assert lean.shape == general.shape == (1, 3, 224, 224)
    # the strip-wise path computes the resize as banded matrix products: equal within float32 rounding
    assert torch.allclose(lean, general, rtol=0, atol=1e-6)
    assert torch.equal(ds[0]["x"], lean)


class _Items:
    """A stand-in dataset: item i is site i, or an error for the sites in ``bad``."""

    def __init__(self, n, bad=()):
        self.n, self.bad = n, set(bad)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        import torch

        if i in self.bad:
            return {"i": i, "x": None, "centers": None, "error": f"site {i}: bad"}
        return {"i": i, "x": torch.full((1, 2, 3, 3), float(i)), "centers": None, "error": None}


@pytest.mark.parametrize("ahead", [False, True, None])
def test_parallel_decode_keeps_order_and_errors(ahead):
    from stratonet.extract.deep.dataset import ParallelDecode

    dec = ParallelDecode(_Items(11, bad={4}), sites_per_batch=3, threads=2, ahead=ahead)
    batches = list(dec)
    assert len(batches) == len(dec) == 4
    assert [i for b in batches for i in b["i"]] == [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert batches[1]["errors"] == {4: "site 4: bad"}
    assert [float(v) for b in batches for v in b["x"][:, 0, 0, 0]] == [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert dec.groups_ahead + dec.groups_in_line == 2  # 2 groups of 2 threads x 3 sites
    if ahead is not None:
        assert (dec.groups_ahead if ahead else dec.groups_in_line) == 2


def test_parallel_decode_leaves_the_callers_model_threads_alone():
    """torch sets a thread's OpenMP count lazily from the process-wide value: a thread that set 2 but had not yet run
    a parallel op dropped to 1 once the decode threads set theirs (the Ray actor's model ran on one core)."""
    import threading

    import torch

    from stratonet.extract.deep.dataset import ParallelDecode

    seen = []

    def caller():  # a fresh thread, as Ray Data's call thread in the model actor
        torch.set_num_threads(2)
        assert len(list(ParallelDecode(_Items(6), sites_per_batch=1, threads=2, ahead=True))) == 6
        seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    try:
        t = threading.Thread(target=caller)
        t.start()
        t.join()
    finally:
        torch.set_num_threads(before)
    assert seen == [2]


def test_parallel_decode_auto_follows_the_load(monkeypatch):
    """auto decodes ahead while other processes keep cores busy, in line while the machine is idle."""
    from stratonet.core import cpuload
    from stratonet.extract.deep.dataset import ParallelDecode

    loads = iter([2.0, 0.0, None, 0.9])
    monkeypatch.setattr(cpuload.OtherLoad, "cores", lambda self: next(loads))
    dec = ParallelDecode(_Items(8), sites_per_batch=1, threads=2, ahead=None)
    assert len(list(dec)) == 8
    assert (dec.groups_ahead, dec.groups_in_line) == (2, 2)  # 2.0 and 0.9 > 0.5 cores; 0.0 and unknown: in line
    assert dec.describe() == "auto on 2 thread(s); groups of sites decoded ahead: 2, in line: 2"


def test_other_load_counts_other_processes_not_this_one(monkeypatch):
    from stratonet.core import cpuload

    clock = {"wall": 0.0, "busy": 100.0, "own": 5.0}
    monkeypatch.setattr(cpuload, "_system_busy_s", lambda: clock["busy"])
    monkeypatch.setattr(cpuload.time, "perf_counter", lambda: clock["wall"])
    monkeypatch.setattr(cpuload.time, "process_time", lambda: clock["own"])
    probe = cpuload.OtherLoad()
    clock.update(wall=2.0, busy=104.0, own=6.0)  # 4 busy core-seconds in 2 s, 1 of them ours
    assert probe.cores() == pytest.approx(1.5)
    clock.update(wall=2.05, busy=104.1, own=6.0)
    assert probe.cores() is None  # too short an interval to tell
    monkeypatch.setattr(cpuload, "_system_busy_s", lambda: None)
    assert cpuload.OtherLoad().cores() is None  # no /proc/stat: unknown


def test_other_load_reads_this_machine():
    from stratonet.core import cpuload

    if cpuload._system_busy_s() is None:
        pytest.skip("no /proc/stat")
    probe = cpuload.OtherLoad()
    time.sleep(0.3)
    cores = probe.cores()
    assert cores is not None and 0.0 <= cores <= (os.cpu_count() or 1) + 0.5


@pytest.mark.parametrize("size", [224, 97, 400])
def test_strip_wise_scale_and_resize_equals_the_two_step_path(size):
    """scale_resize_planes: the strip-by-strip path equals rescale + F.interpolate within float32 rounding,
    with and without illumination functions, uint16 and float planes, non-square fields and a flat channel."""
    import torch

    from stratonet.images.transforms import rescale_to_unit, resize_batch, scale_resize_planes

    rng = np.random.default_rng(0)
    planes = [rng.integers(0, 4000, (300, 257)).astype(np.uint16), rng.random((300, 257)).astype(np.float32),
              np.full((300, 257), 7, np.uint16)]
    bounds = [(100.0, 3500.0), (0.05, 0.9), (7.0, 7.0)]
    fns = [rng.uniform(0.5, 1.5, (300, 257)).astype(np.float32), None, None]
    for illum in (None, fns):
        stack = np.stack([p.astype(np.float32) / (np.maximum(f, 1e-6) if (illum and f is not None) else 1)
                          for p, f in zip(planes, fns)])
        want = resize_batch(rescale_to_unit(stack, bounds=np.array(bounds, np.float32))[None], size)
        got = scale_resize_planes(planes, bounds, size, illum)
        assert got.shape == (1, 3, size, size) and got.dtype == torch.float32
        assert torch.allclose(got, want, rtol=0, atol=1e-6)
        assert torch.all(got[0, 2] == 0)  # the flat channel
