"""BBBC013 (FKHR-GFP translocation, 96 wells): Z', best single feature, EC50 and Spearman with dose per readout.

Runs the tool end to end once and caches every stage under ``--work`` (default /tmp/assay_bbbc013):

    LoadData CSV (from ../shared/data/bbbc013_translocation/metadata.csv)
      -> stratonet index -> stratonet extract classical (GFP + DNA; cells grown on GFP)
      -> stratonet extract deep (pretrained EfficientNet-Lite0 by default, untrained StratoNet-50, ...)
      -> stratonet profile (well medians, mad_robustize vs negcon) -> evaluate_assay with several readouts

Usage::

    PYTHONPATH=src python benchmarks/quality/bbbc013_assay.py [--work /tmp/assay_bbbc013] [--readouts ...]

Prints one row per readout and writes ``<work>/assay_benchmark.csv``/``.json``. With ``--save-test-table PATH`` it
also writes the well-level table used by tests/assay/test_assay_bbbc013.py (non-texture features, float32).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "bbbc013_translocation"
CONTROL_TYPES = {"negative_control": "negcon", "positive_control": "poscon", "dose_series": "trt"}
DEFAULT_READOUTS = ["diff", "diff:top_k=10", "diff:top_k=25", "diff:top_k=50", "diff:top_k=100", "diff:pca=5",
                    "logistic", "logistic:top_k=25", "logistic:pca=5", "lda:top_k=50", "mahalanobis"]


#: Deep feature sets: the default pretrained configuration (ImageNet EfficientNet-Lite0, whole field at its native
#: size, plate scaling), the other input sizes, scalings and tiles, and the untrained StratoNet-50 baseline.
L0 = ["--weights", "efficientnet_lite0.in1k"]
DEEP_SETS = {
    "deep": L0,  # the default: whole field at its native size (640 px here), plate scaling
    "deep_image": L0 + ["--scaling", "image"],
    "deep_bitdepth": L0 + ["--scaling", "bitdepth"],
    "deep_448": L0 + ["--input-size", "448"],
    "deep_448_image": L0 + ["--input-size", "448", "--scaling", "image"],
    "deep_448_bitdepth": L0 + ["--input-size", "448", "--scaling", "bitdepth"],
    "deep_224": L0 + ["--input-size", "224"],
    "deep_224_image": L0 + ["--input-size", "224", "--scaling", "image"],
    "deep_224_bitdepth": L0 + ["--input-size", "224", "--scaling", "bitdepth"],
    "deep_tiles": L0 + ["--mode", "tiles"],
    "deep_tiles_image": L0 + ["--mode", "tiles", "--scaling", "image"],
    "deep_untrained": ["--model", "stratonet50", "--seed", "0"],
    "deep_untrained_448": ["--model", "stratonet50", "--seed", "0", "--input-size", "448"],
    "deep_untrained_224": ["--model", "stratonet50", "--seed", "0", "--input-size", "224"],
}


def stratonet(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run([sys.executable, "-m", "stratonet", *args], check=True, env=env)


def well_annotations(m: pd.DataFrame) -> pd.DataFrame:
    """Per well of ``metadata.csv``: the field's control names, the dose index and a compound name."""
    return pd.DataFrame({
        "Metadata_Well": m.well.astype(str), "Metadata_control_type": m.control_type.map(CONTROL_TYPES),
        "Metadata_dose_index": m.dose_index,
        "Metadata_compound": m.control_type.map({"negative_control": "DMSO", "positive_control": "poscon",
                                                 "dose_series": "PI3Ki"}),
    })


def load_data_csv(work: Path) -> Path:
    """A CellProfiler LoadData CSV of the plate with the field's control names."""
    m = pd.read_csv(DATA / "metadata.csv")
    ann = well_annotations(m)
    out = pd.DataFrame({
        "Metadata_Plate": m.plate, "Metadata_Well": m.well, "Metadata_Site": 1,
        "Metadata_control_type": ann.Metadata_control_type, "Metadata_dose_index": m.dose_index,
        "Metadata_treatment_class": m.treatment_class, "Metadata_compound": ann.Metadata_compound,
        "FileName_OrigGFP": [Path(f).name for f in m.file_gfp],
        "PathName_OrigGFP": [str(DATA / Path(f).parent) for f in m.file_gfp],
        "FileName_OrigDNA": [Path(f).name for f in m.file_dna],
        "PathName_OrigDNA": [str(DATA / Path(f).parent) for f in m.file_dna],
    })
    path = work / "load_data.csv"
    out.to_csv(path, index=False)
    return path


def build_profiles(work: Path) -> dict[str, Path]:
    """Index, extract and profile once; later runs reuse the cached tables."""
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "index.parquet").exists():
        stratonet("index", str(load_data_csv(work)), "-o", str(work / "index.parquet"))
    site = work / "classical" / "site.parquet"
    if not site.exists():
        t0 = time.perf_counter()
        stratonet("extract", "classical", str(work / "index.parquet"), "-o", str(work / "classical"),
                  "--dna-channel", "DNA", "--cell-channels", "GFP", "--workers", "1")
        print(f"classical extraction: {time.perf_counter() - t0:.0f} s", flush=True)
    profiles = {"all": work / "profiles_all.parquet", "selected": work / "profiles_selected.parquet",
                "pixel": work / "profiles_pixel.parquet"}
    if not profiles["pixel"].exists():  # the flattened-pixel baseline (16 x 16 per channel)
        stratonet("extract", "pixel", str(work / "index.parquet"), "-o", str(work / "pixel.parquet"), "--size", "16")
        stratonet("profile", str(work / "pixel.parquet"), "-o", str(profiles["pixel"]), "--aggregate", "well",
                  "--select", "drop_na_columns")
    for name, extra in DEEP_SETS.items():  # deep features through the CLI, profiled like the classical ones
        table = work / f"{name}.parquet"
        profiles[name] = work / f"profiles_{name}.parquet"
        if not table.exists():
            t0 = time.perf_counter()
            stratonet("extract", "deep", str(work / "index.parquet"), "-o", str(table), *extra)
            print(f"{name} extraction: {time.perf_counter() - t0:.0f} s", flush=True)
        if not profiles[name].exists():
            stratonet("profile", str(table), "-o", str(profiles[name]), "--aggregate", "well", "--select",
                      "drop_na_columns")
    if not profiles["all"].exists():  # every feature, normalised only
        stratonet("profile", str(site), "-o", str(profiles["all"]), "--aggregate", "well", "--select",
                  "drop_na_columns")
    if not profiles["selected"].exists():  # the profile command's default selection
        stratonet("profile", str(site), "-o", str(profiles["selected"]), "--aggregate", "well")
    return profiles


def parse_readout(text: str):
    """'diff:top_k=25' -> ReadoutSpec('diff', top_k=25)."""
    from stratonet.assay.readouts import ReadoutSpec

    kind, _, opts = text.partition(":")
    kw = {k: int(v) for k, v in (o.split("=") for o in opts.split(",") if o)}
    return ReadoutSpec(kind, **kw)


def run(profile: Path, readouts: list[str], n_boot: int, out_dir: Path | None) -> pd.DataFrame:
    from stratonet.assay.config import AssayConfig
    from stratonet.assay.evaluate import evaluate_assay, write_assay
    from stratonet.core.tables import read_table

    df = read_table(profile)
    rows = []
    for text in readouts:
        spec = parse_readout(text)
        t0 = time.perf_counter()
        cfg = AssayConfig(readouts=[spec], dose_column="Metadata_dose_index", compound_column="Metadata_compound",
                          n_boot=n_boot, with_map=False, p_method="gaussian")
        found = evaluate_assay(df, cfg, name=profile.stem)
        if out_dir:
            write_assay(found, out_dir / spec.label.replace(":", "_"))
        res = found.metrics
        p = next(iter(res["plates"].values()))
        st = p["readouts"][spec.label]
        d = p["dose"]["PI3Ki"]
        rows.append({"profile": profile.stem, "n_features": res["n_features"], "readout": spec.label,
                     "z_prime": st["z_prime"], "z_prime_lo": st["z_prime_ci95"][0],
                     "z_prime_hi": st["z_prime_ci95"][1], "robust_z_prime": st["robust_z_prime"], "ssmd": st["ssmd"],
                     "ec50_dose_index": d["ec50"], "ec50_lo": d["ec50_ci95"][0], "ec50_hi": d["ec50_ci95"][1],
                     "dose_fit": d["status"], "hill": d["hill"], "spearman_dose": d["spearman_dose"],
                     "best_feature": p["best_feature"]["feature"], "best_feature_z_prime": p["best_feature"]["z_prime"],
                     "n_hits": p["hits"]["n_hits"], "seconds": round(time.perf_counter() - t0, 1)})
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    return pd.DataFrame(rows)


def profile_assay(table: pd.DataFrame, readout: str = "logistic:top_k=25", n_boot: int = 200) -> dict:
    """The tool's assay figures for one site-level feature table of the plate, in memory.

    The same steps as the CLI route above: controls named as in the LoadData CSV, ``run_profile`` (well medians,
    mad_robustize vs negcon, drop_na_columns), then ``evaluate_assay`` with one readout. Returns Z' (with its
    bootstrap 95 % CI) and the Spearman correlation of the readout with the dose index over the 72 dose wells.
    """
    from stratonet.assay.config import AssayConfig
    from stratonet.assay.evaluate import evaluate_assay, write_assay
    from stratonet.profile.config import ProfileConfig
    from stratonet.profile.pipeline import run_profile

    meta = well_annotations(pd.read_csv(DATA / "metadata.csv"))
    tab = table.drop(columns=[c for c in meta.columns if c != "Metadata_Well" and c in table.columns])
    tab = tab.assign(Metadata_Well=tab["Metadata_Well"].astype(str)).merge(meta, on="Metadata_Well",
                                                                          validate="many_to_one")
    prof = run_profile(tab, ProfileConfig(select="drop_na_columns"))
    spec = parse_readout(readout)
    res = evaluate_assay(prof, AssayConfig(readouts=[spec], dose_column="Metadata_dose_index",
                                           compound_column="Metadata_compound", n_boot=n_boot, with_map=False,
                                           p_method="gaussian")).metrics
    p = next(iter(res["plates"].values()))
    st = p["readouts"][spec.label]
    return {"readout": spec.label, "z_prime": st["z_prime"], "z_prime_ci95": st["z_prime_ci95"],
            "spearman_dose": p["dose"]["PI3Ki"]["spearman_dose"], "n_features": res["n_features"],
            "n_wells": len(prof)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/assay_bbbc013"))
    ap.add_argument("--profiles", default="all,selected,pixel", help="Which profile tables: all, selected, pixel, " + ", ".join(DEEP_SETS) + ".")
    ap.add_argument("--readouts", default=",".join(DEFAULT_READOUTS).replace(",", ";"),
                    help="';'-separated readouts, e.g. 'diff;diff:top_k=25;logistic'.")
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--save-test-table", type=Path, default=None)
    args = ap.parse_args()
    profiles = build_profiles(args.work)
    if args.save_test_table:  # every non-texture feature of the 'all' profiles, float32, no schema metadata
        import pyarrow as pa
        import pyarrow.parquet as pq

        from stratonet.core.tables import read_table

        df = read_table(profiles["all"])
        meta = [c for c in df.columns if c.startswith("Metadata_")]
        feats = [c for c in df.columns if not c.startswith("Metadata_") and "_Texture_" not in c]
        df = df[meta + feats].astype({f: np.float32 for f in feats})
        table = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)
        pq.write_table(table, args.save_test_table, compression="zstd", compression_level=19)
        print(f"test table: {args.save_test_table} ({args.save_test_table.stat().st_size / 1024:.0f} KB, "
              f"{len(df)} wells x {len(feats)} features)")
    readouts = [r for r in args.readouts.split(";") if r]
    tables = [run(profiles[name], readouts, args.n_boot, args.work / "assay" / name)
              for name in args.profiles.split(",") if name]
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(args.work / "assay_benchmark.csv", index=False)
    (args.work / "assay_benchmark.json").write_text(json.dumps(table.to_dict(orient="records"), indent=1))
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
