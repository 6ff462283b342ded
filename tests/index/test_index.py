"""The image index: layouts, checks and one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import one_line_error, run_cli
from stratonet.core.errors import InputFileError, SiteError, StratoNetError
from stratonet.index import build_index
from stratonet.index.schema import well_from_row_col

PEDIATRIC_MAP = "1=Brightfield,2=ER,3=AGP,4=Mito,5=DNA,6=RNA"


def write_phenix(folder, rows=8, cols=12, sites=4, channels=5, shape=(8, 8), skip=()):
    """Tiny real TIFFs with Phenix names; ``skip`` holds (row, col, site, ch) to leave out."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            for f in range(1, sites + 1):
                for ch in range(1, channels + 1):
                    if (r, c, f, ch) in skip:
                        continue
                    img = rng.integers(0, 4000, size=shape, dtype=np.uint16)
                    tifffile.imwrite(folder / f"r{r:02d}c{c:02d}f{f:02d}p01-ch{ch}sk1fk1fl1.tiff", img)
    return folder



# --- real JUMP fields of view ---------------------------------------------------------------------------------

def test_phenix_real_jump_fov(jump_fov):
    df = build_index(jump_fov / "images" / "orig")
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["Metadata_Plate"], row["Metadata_Well"], row["Metadata_Site"]) == ("BR00117006", "A01", 1)
    assert set(c for c in df.columns if c.startswith("Path_")) == {"Path_AGP", "Path_RNA", "Path_DNA"}
    assert row["Path_DNA"].endswith("r01c01f01p01-ch5sk1fk1fl1.tiff")
    assert row["Path_AGP"].endswith("-ch2sk1fk1fl1.tiff") and row["Path_RNA"].endswith("-ch3sk1fk1fl1.tiff")


def test_phenix_real_pediatric_fov(pediatric_fov, tmp_path):
    out = tmp_path / "idx.parquet"
    code = run_cli(["index", pediatric_fov / "images" / "orig", "-o", out, "--plate", "BR00143976",
                    "--channel-map", PEDIATRIC_MAP])
    assert code == 0
    df = pd.read_parquet(out)
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["Metadata_Plate"], row["Metadata_Well"], row["Metadata_Site"]) == ("BR00143976", "C03", 3)
    paths = {c[5:]: v for c, v in row.items() if c.startswith("Path_")}
    assert len(paths) == 6
    assert paths["DNA"].endswith("-ch5sk1fk1fl1.tiff") and paths["Brightfield"].endswith("-ch1sk1fk1fl1.tiff")
    assert paths["RNA"].endswith("-ch6sk1fk1fl1.tiff") and paths["ER"].endswith("-ch2sk1fk1fl1.tiff")
    assert (tmp_path / "index.config.yaml").exists()


def test_phenix_unmapped_channel_keeps_number(pediatric_fov):
    df = build_index(pediatric_fov / "images" / "orig", plate="BR00143976")
    assert "Path_ch6" in df.columns and "Path_DNA" in df.columns


# --- a full synthetic plate -----------------------------------------------------------------------------------

def test_phenix_96_wells_4_sites_5_channels(tmp_path):
    folder = write_phenix(tmp_path / "BR00000001" / "Images")
    (folder / "Index.idx.xml").write_text("<xml/>")  # non-image files are ignored
    out = tmp_path / "out" / "index.parquet"
    assert run_cli(["index", folder, "-o", out]) == 0
    df = pd.read_parquet(out)
    assert len(df) == 384
    assert set(df["Metadata_Plate"]) == {"BR00000001"}
    assert df[["Metadata_Well", "Metadata_Site"]].drop_duplicates().shape[0] == 384
    assert set(df["Metadata_Well"]) == {well_from_row_col(r, c) for r in range(1, 9) for c in range(1, 13)}
    path_cols = [c for c in df.columns if c.startswith("Path_")]
    assert sorted(path_cols) == sorted(f"Path_{c}" for c in ["Mito", "AGP", "RNA", "ER", "DNA"])
    files = df[path_cols].to_numpy().ravel()
    assert len(set(files)) == 384 * 5 and all(__import__("os").path.isfile(f) for f in files)
    b3 = df[(df.Metadata_Well == "B03") & (df.Metadata_Site == 2)].iloc[0]
    assert b3["Path_DNA"].endswith("r02c03f02p01-ch5sk1fk1fl1.tiff")


def test_phenix_plane_selection(tmp_path):
    folder = tmp_path / "plate"
    folder.mkdir()
    for p in (1, 2):
        for ch in (1, 2):
            tifffile.imwrite(folder / f"r01c01f01p{p:02d}-ch{ch}sk1fk1fl1.tiff", np.full((4, 4), p, np.uint16))
    df = build_index(folder, "phenix", channel_map="1=DNA,2=AGP", plane=2, plate="P")
    assert df.iloc[0]["Path_DNA"].endswith("p02-ch1sk1fk1fl1.tiff")
    with pytest.raises(InputFileError, match="plane 3"):
        build_index(folder, "phenix", plane=3)


# --- checks and errors ----------------------------------------------------------------------------------------

def test_corrupt_tiff_fails_naming_file_then_skip_writes_errors(tmp_path, capsys):
    folder = write_phenix(tmp_path / "BR00000002", rows=1, cols=3, sites=2, channels=2)
    bad = folder / "r01c02f01p01-ch1sk1fk1fl1.tiff"
    bad.write_bytes(b"II*\x00" + b"\x00garbage" * 10)
    out = tmp_path / "index.parquet"
    assert run_cli(["index", folder, "-o", out, "--channel-map", "1=DNA,2=AGP"]) != 0
    one_line_error(capsys, str(bad))
    assert not out.exists()
    assert run_cli(["index", folder, "-o", out, "--channel-map", "1=DNA,2=AGP", "--on-error", "skip"]) == 0
    err = capsys.readouterr().err
    assert "1 site skipped" in err
    df = pd.read_parquet(out)
    assert len(df) == 5 and not ((df.Metadata_Well == "A02") & (df.Metadata_Site == 1)).any()
    errors = pd.read_csv(tmp_path / "index.errors.csv")
    assert list(errors["site"]) == ["BR00000002/A02/1"] and str(bad) in errors["error"].iloc[0]


def test_truncated_tiff_is_caught(tmp_path):
    folder = write_phenix(tmp_path / "P", rows=1, cols=1, sites=1, channels=1, shape=(64, 64))
    f = next(folder.iterdir())
    f.write_bytes(f.read_bytes()[:-2000])
    with pytest.raises(InputFileError, match="truncated"):
        build_index(folder, channel_map="1=DNA")


def test_no_check_skips_header_reads(tmp_path):
    folder = write_phenix(tmp_path / "P", rows=1, cols=1, sites=1, channels=1)
    next(folder.iterdir()).write_bytes(b"not a tiff")
    assert len(build_index(folder, channel_map="1=DNA", check=False)) == 1


def test_site_lacking_channel(tmp_path, capsys):
    folder = write_phenix(tmp_path / "BR00000003", rows=1, cols=2, sites=1, channels=3, skip={(1, 2, 1, 3)})
    assert run_cli(["index", folder, "-o", tmp_path / "i.parquet", "--channel-map", "1=DNA,2=AGP,3=RNA"]) != 0
    one_line_error(capsys, "site BR00000003/A02/1", "no image for channel 'RNA'")


def test_differing_sizes(tmp_path, capsys):
    folder = write_phenix(tmp_path / "BR00000004", rows=1, cols=1, sites=1, channels=2)
    tifffile.imwrite(folder / "r01c01f01p01-ch2sk1fk1fl1.tiff", np.zeros((10, 8), np.uint16))
    assert run_cli(["index", folder, "-o", tmp_path / "i.parquet", "--channel-map", "1=DNA,2=AGP"]) != 0
    one_line_error(capsys, "site BR00000004/A01/1", "differ in size", "DNA=8x8", "AGP=10x8")


def test_missing_file_in_loaddata(tmp_path, capsys):
    folder = write_phenix(tmp_path / "imgs", rows=1, cols=1, sites=1, channels=1)
    pd.DataFrame({
        "Metadata_Plate": ["P1", "P1"], "Metadata_Well": ["A01", "A02"], "Metadata_Site": [1, 1],
        "FileName_OrigDNA": ["r01c01f01p01-ch1sk1fk1fl1.tiff", "gone.tiff"], "PathName_OrigDNA": [str(folder)] * 2,
    }).to_csv(tmp_path / "load_data.csv", index=False)
    assert run_cli(["index", tmp_path / "load_data.csv", "-o", tmp_path / "i.parquet"]) != 0
    one_line_error(capsys, str(folder / "gone.tiff"), "file not found")


def test_unknown_layout(tmp_path, capsys):
    assert run_cli(["index", tmp_path, "--layout", "zeiss", "-o", tmp_path / "i.parquet"]) != 0
    err = capsys.readouterr().err
    assert "zeiss" in err and "Traceback" not in err
    with pytest.raises(StratoNetError, match="unknown layout 'zeiss'"):
        build_index(tmp_path, "zeiss")


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert run_cli(["index", tmp_path / "empty", "-o", tmp_path / "i.parquet"]) != 0
    one_line_error(capsys, str(tmp_path / "empty"), "empty")


def test_no_matching_files(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    tifffile.imwrite(tmp_path / "x" / "holiday.tif", np.zeros((4, 4), np.uint16))
    assert run_cli(["index", tmp_path / "x", "-o", tmp_path / "i.parquet"]) != 0
    one_line_error(capsys, "no Phenix image files")


def test_duplicate_site_channel_is_error(tmp_path):
    write_phenix(tmp_path / "a", rows=1, cols=1, sites=1, channels=1)
    write_phenix(tmp_path / "b", rows=1, cols=1, sites=1, channels=1)
    with pytest.raises(StratoNetError, match="two files for channel"):
        build_index(tmp_path, channel_map="1=DNA", plate="P")


# --- other layouts --------------------------------------------------------------------------------------------

def _jump_loaddata(tmp_path, with_illum=False):
    folder = write_phenix(tmp_path / "images", rows=1, cols=2, sites=2, channels=5)
    illum_dir = tmp_path / "illum"
    illum_dir.mkdir()
    chans = {1: "Mito", 2: "AGP", 3: "RNA", 4: "ER", 5: "DNA"}
    rows = []
    for c in (1, 2):
        for f in (1, 2):
            r = {"Metadata_Plate": "BR00116991", "Metadata_Well": f"A{c:02d}", "Metadata_Site": f,
                 "Metadata_Row": 1, "Metadata_Col": c, "Metadata_AbsTime": "2020-11-05T19:55:20"}
            for n, ch in chans.items():
                r[f"FileName_Orig{ch}"] = f"r01c{c:02d}f{f:02d}p01-ch{n}sk1fk1fl1.tiff"
                r[f"PathName_Orig{ch}"] = str(folder)
                if with_illum:
                    r[f"FileName_Illum{ch}"] = f"BR00116991_Illum{ch}.npy"
                    r[f"PathName_Illum{ch}"] = str(illum_dir)
            rows.append(r)
    if with_illum:
        for ch in chans.values():
            np.save(illum_dir / f"BR00116991_Illum{ch}.npy", np.ones((8, 8), np.float32))
    csv = tmp_path / ("load_data_with_illum.csv" if with_illum else "load_data.csv")
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def test_loaddata_jump_columns(tmp_path, jump_metadata):
    csv = _jump_loaddata(tmp_path)
    real_cols = pd.read_csv(
        jump_metadata.parent / "jump_cellprofiler_csv" / "cytotable_cpg0043" / "BR00116991-A01-1" / "Image.csv.gz",
        nrows=0).columns
    assert "FileName_OrigDNA" in real_cols and "PathName_OrigDNA" in real_cols  # the format we imitate
    df = build_index(csv)
    assert len(df) == 4
    assert {"Path_DNA", "Path_ER", "Path_RNA", "Path_AGP", "Path_Mito", "Metadata_AbsTime"} <= set(df.columns)
    assert not any(c.startswith("Illum_") for c in df.columns)
    assert df.loc[(df.Metadata_Well == "A02") & (df.Metadata_Site == 2), "Path_Mito"].iloc[0].endswith(
        "r01c02f02p01-ch1sk1fk1fl1.tiff")


def test_loaddata_with_illum(tmp_path):
    df = build_index(_jump_loaddata(tmp_path, with_illum=True))
    assert {f"Illum_{c}" for c in ["DNA", "ER", "RNA", "AGP", "Mito"]} <= set(df.columns)
    assert df["Illum_DNA"].iloc[0].endswith("illum/BR00116991_IllumDNA.npy")


def test_loaddata_s3_pathname_joined_with_slash(tmp_path):
    pd.DataFrame({"Metadata_Plate": ["P"], "Metadata_Well": ["B2"], "Metadata_Site": [1],
                  "FileName_OrigDNA": ["x.tiff"], "PathName_OrigDNA": ["s3://bucket/plate/Images/"]}
                 ).to_csv(tmp_path / "ld.csv", index=False)
    df = build_index(tmp_path / "ld.csv", check=False)
    assert df.iloc[0]["Path_DNA"] == "s3://bucket/plate/Images/x.tiff"
    assert df.iloc[0]["Metadata_Well"] == "B02"


def test_imagexpress(tmp_path):
    folder = tmp_path / "2024-01-01" / "PlateX"
    folder.mkdir(parents=True)
    for well in ("A01", "B12"):
        for s in (1, 2):
            for w in (1, 2, 3):
                suffix = "" if w != 2 else "8F1A2B3C-1111-2222-3333-444455556666"
                tifffile.imwrite(folder / f"PlateX_{well}_s{s}_w{w}{suffix}.tif", np.zeros((6, 6), np.uint16))
                tifffile.imwrite(folder / f"PlateX_{well}_s{s}_w{w}_thumb.tif", np.zeros((2, 2), np.uint16))
    df = build_index(folder, "imagexpress", channel_map="w1=DNA,w2=ER,w3=Mito")
    assert len(df) == 4 and set(df["Metadata_Plate"]) == {"PlateX"}
    assert {"Path_DNA", "Path_ER", "Path_Mito"} == {c for c in df.columns if c.startswith("Path_")}
    assert not df["Path_DNA"].str.contains("thumb").any()
    assert df["Path_ER"].str.contains("8F1A2B3C").all()


def test_regex_layout(tmp_path):
    for plate in ("PA", "PB"):
        d = tmp_path / plate
        d.mkdir()
        for row in ("C", "D"):
            for ch in ("hoechst", "phalloidin"):
                tifffile.imwrite(d / f"{row}-7_site3_{ch}.tif", np.zeros((5, 5), np.uint16))
    pat = r"(?P<plate>P[AB])/(?P<row>[A-P])-(?P<col>\d+)_site(?P<site>\d+)_(?P<channel>\w+)\.tif"
    out = tmp_path / "o" / "idx.csv"
    assert run_cli(["index", tmp_path, "--layout", "regex", "--pattern", pat, "--channel-map",
                    "hoechst=DNA,phalloidin=AGP", "-o", out]) == 0
    df = pd.read_csv(out)
    assert len(df) == 4
    assert set(zip(df.Metadata_Plate, df.Metadata_Well, df.Metadata_Site)) == {
        ("PA", "C07", 3), ("PA", "D07", 3), ("PB", "C07", 3), ("PB", "D07", 3)}
    assert df["Path_DNA"].str.endswith("hoechst.tif").all()
    with pytest.raises(StratoNetError, match="named groups"):
        build_index(tmp_path, "regex", pattern=r"(?P<well>\w+)")


def test_bbbc021_real_image_table(tmp_path, bbbc021):
    table = pd.read_csv(bbbc021 / "cytominergallery" / "BBBC021_v1_image.csv.gz")
    from stratonet.index.bbbc021 import read_moa

    moa = read_moa(bbbc021 / "cytominergallery" / "BBBC021_v1_moa.csv")
    emetine = moa[(moa.compound == "emetine")].iloc[0]
    hit = table[(table.Image_Metadata_Compound == "emetine")
                & (table.Image_Metadata_Concentration.round(6) == round(emetine.concentration, 6))]
    plate = hit.iloc[0]["Image_Metadata_Plate_DAPI"]
    rows = table[table.index.isin(hit.index[:2]) | (
        (table.Image_Metadata_Plate_DAPI == plate) & (table.Image_Metadata_Compound == "DMSO"))].head(6)
    rows = rows[rows.Image_Metadata_Plate_DAPI == plate]
    for _, r in rows.iterrows():
        d = tmp_path / r["Image_PathName_DAPI"]
        d.mkdir(parents=True, exist_ok=True)
        for ch in ("DAPI", "Tubulin", "Actin"):
            tifffile.imwrite(d / r[f"Image_FileName_{ch}"], np.zeros((4, 4), np.uint16))
    # the image table (only this plate's first rows, so the other plates' folders are simply absent)
    rows.to_csv(tmp_path / "BBBC021_v1_image.csv", index=False)
    (tmp_path / "BBBC021_v1_moa.csv").write_bytes((bbbc021 / "cytominergallery" / "BBBC021_v1_moa.csv").read_bytes())
    df = build_index(tmp_path, "bbbc021")
    assert len(df) == len(rows) >= 3
    r0, t0 = df.iloc[0], rows.iloc[0]
    assert r0["Metadata_Plate"] == plate and r0["Metadata_Well"] == t0["Image_Metadata_Well_DAPI"]
    assert r0["Metadata_Site"] == int(t0["Image_FileName_DAPI"].split("_s")[1].split("_")[0])
    assert r0["Path_DNA"].endswith(t0["Image_FileName_DAPI"]) and r0["Path_Actin"].endswith(t0["Image_FileName_Actin"])
    assert r0["Metadata_pert_iname"] == t0["Image_Metadata_Compound"]
    by_compound = df.groupby("Metadata_Compound")["Metadata_moa"].first()
    assert by_compound["emetine"] == emetine.moa == "Protein synthesis"
    assert by_compound["DMSO"] == "control"
    assert set(df.loc[df.Metadata_Compound == "DMSO", "Metadata_control_type"]) == {"negcon"}


def test_bbbc021_full_table_only_present_plates(tmp_path, bbbc021):
    table = pd.read_csv(bbbc021 / "cytominergallery" / "BBBC021_v1_image.csv.gz")
    r = table.iloc[0]
    d = tmp_path / r["Image_PathName_DAPI"]
    d.mkdir(parents=True)
    with pytest.raises(InputFileError, match="not found"):  # plate folder present, its files not
        build_index(bbbc021 / "cytominergallery" / "BBBC021_v1_image.csv.gz", "bbbc021", image_root=tmp_path)
    df = build_index(bbbc021 / "cytominergallery" / "BBBC021_v1_image.csv.gz", "bbbc021", image_root=tmp_path,
                     check=False)
    assert set(df["Metadata_Plate"]) == {r["Image_Metadata_Plate_DAPI"]}


def test_arrays_layout(tmp_path):
    d = tmp_path / "crops"
    d.mkdir()
    rows = []
    for i in range(3):
        # random pixels: a constant image is a bad site on reading (issue 27, D2)
        np.save(d / f"cell{i}.npy", np.random.default_rng(i).random((3, 12, 12), dtype=np.float32))
        rows.append({"FileName": f"cell{i}.npy", "Metadata_Plate": "P", "Metadata_Well": "a1",
                     "Metadata_Site": 1, "Metadata_ObjectNumber": i + 1, "compound": "x"})
    pd.DataFrame(rows).to_csv(d / "index.csv", index=False)
    out = tmp_path / "idx.parquet"
    assert run_cli(["index", d, "--layout", "arrays", "--channels", "DNA,RNA,AGP", "-o", out]) == 0
    df = pd.read_parquet(out)
    assert len(df) == 3 and list(df["Metadata_ObjectNumber"]) == [1, 2, 3]
    assert set(df["Stack_Channels"]) == {"DNA|RNA|AGP"} and df["Metadata_Well"].iloc[0] == "A01"
    assert "Metadata_compound" in df.columns
    from stratonet.images.io import load_index_row

    assert load_index_row(df.iloc[0], ["AGP", "DNA"]).shape == (2, 12, 12)
    np.save(d / "cell1.npy", np.zeros((2, 12, 12), np.float32))
    with pytest.raises(SiteError, match="expected \\(3, H, W\\)"):
        build_index(d, "arrays", channels="DNA,RNA,AGP")


# --- JUMP metadata join ---------------------------------------------------------------------------------------

def test_jump_metadata_join_target1(tmp_path, jump_metadata):
    folder = write_phenix(tmp_path / "BR00116991" / "Images", rows=1, cols=2, sites=1, channels=1)
    pm_dir = jump_metadata / "JUMP-Target"
    bp = tmp_path / "barcode_platemap.csv"
    bp.write_text("Assay_Plate_Barcode,Plate_Map_Name\nBR00116991,JUMP-Target-1_compound_platemap\n")
    out = tmp_path / "idx.parquet"
    assert run_cli(["index", folder, "-o", out, "--channel-map", "1=DNA", "--barcode-platemap", bp,
                    "--platemap", pm_dir, "--compound-metadata", pm_dir / "JUMP-Target-1_compound_metadata.tsv"]) == 0
    df = pd.read_parquet(out).set_index("Metadata_Well")
    a01, a02 = df.loc["A01"], df.loc["A02"]
    assert a01["Metadata_broad_sample"] == "BRD-A86665761-001-01-1"
    assert a01["Metadata_pert_iname"] == "gabapentin-enacarbil" and a01["Metadata_control_type"] == "trt"
    assert a02["Metadata_pert_iname"] == "DMSO" and a02["Metadata_control_type"] == "negcon"
    assert a01["Metadata_solvent"] == "DMSO" and "Metadata_target_list" in df.columns


def test_platemap_matching_no_well(tmp_path, capsys, jump_metadata):
    folder = write_phenix(tmp_path / "BR00116991", rows=1, cols=1, sites=1, channels=1)
    pm = tmp_path / "pm.txt"
    pm.write_text("well_position\tbroad_sample\tsolvent\nZ99\tBRD-X\tDMSO\n")
    assert run_cli(["index", folder, "-o", tmp_path / "i.parquet", "--channel-map", "1=DNA", "--platemap", pm]) != 0
    one_line_error(capsys, str(pm), "matches no well")
