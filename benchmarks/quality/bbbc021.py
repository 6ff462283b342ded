"""BBBC021 real-data acceptance: NSC / NSCB 1-NN MoA accuracy from the tool's own profiling chain.

Loads the raw per-well mean CellProfiler profiles (cytominergallery, 632 wells x 516 features), joins compound and
concentration (BBBC021_v1_image.csv.gz) and MoA (BBBC021_v1_moa.csv, old-Mac CR line endings), then searches a small
grid of profiling configurations and prints NSC / NSCB for each, next to the processed ``morpheus`` profiles.

Run from the repository root::

    PYTHONPATH=src /work/venv/bin/python benchmarks/quality/bbbc021.py [--data ../shared/data/bbbc021_profiles]

Batch for NSCB = the imaging week (``Week10`` of plate ``Week10_40111``).
"""

from __future__ import annotations

import argparse
import io
import itertools
import time
from pathlib import Path

import pandas as pd

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bbbc021_profiles"

#: The grid searched: normalisation x feature selection x spherize (epsilon).
#: Normalisation is always against the DMSO wells; per plate (6 DMSO wells each) or pooled over all plates.
#: pycytominer adds the spherize epsilon to the singular values of the DMSO matrix (sqrt(n-1) x SD scale),
#: so useful values are O(1-100), not the 1e-6 default.
GRID = {
    "by_plate": [True, False],
    "normalize": ["mad_robustize", "standardize"],
    "select": ["variance_threshold,drop_na_columns,drop_outliers",
               "variance_threshold,correlation_threshold,drop_na_columns,drop_outliers"],
    "spherize": [None, 1.0, 10.0, 100.0],
}


def read_moa(path: Path) -> pd.DataFrame:
    """compound, concentration -> moa (the file uses bare CR line endings)."""
    text = path.read_bytes().decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    return pd.read_csv(io.StringIO(text))


def load_raw(data: Path = DEFAULT_DATA) -> pd.DataFrame:
    """Raw per-well means with Metadata_Plate / Well / Batch / Compound / Concentration / moa (DMSO rows: moa DMSO)."""
    gallery = data / "cytominergallery"
    wells = pd.read_csv(gallery / "ljosa_jbiomolscreen_2013_per_well_mean.csv.gz")
    wells = wells.rename(columns={"Image_Metadata_Plate": "Metadata_Plate", "Image_Metadata_Well": "Metadata_Well"})
    img = pd.read_csv(gallery / "BBBC021_v1_image.csv.gz")
    img = img.rename(columns={"Image_Metadata_Plate_DAPI": "Metadata_Plate", "Image_Metadata_Well_DAPI": "Metadata_Well",
                              "Image_Metadata_Compound": "Metadata_Compound",
                              "Image_Metadata_Concentration": "Metadata_Concentration"})
    plate_map = img[["Metadata_Plate", "Metadata_Well", "Metadata_Compound", "Metadata_Concentration"]].drop_duplicates()
    if plate_map.duplicated(["Metadata_Plate", "Metadata_Well"]).any():
        raise ValueError("BBBC021 image table maps one well to two treatments")
    moa = read_moa(gallery / "BBBC021_v1_moa.csv").rename(
        columns={"compound": "Metadata_Compound", "concentration": "Metadata_Concentration", "moa": "Metadata_moa"})
    df = wells.merge(plate_map, on=["Metadata_Plate", "Metadata_Well"], how="left")
    df = df.merge(moa, on=["Metadata_Compound", "Metadata_Concentration"], how="left")
    df = df.assign(Metadata_Batch=df["Metadata_Plate"].str.split("_").str[0])
    meta = [c for c in df.columns if c.startswith("Metadata_")]
    return df[meta + [c for c in df.columns if not c.startswith("Metadata_")]].copy()


def load_morpheus(data: Path = DEFAULT_DATA) -> pd.DataFrame:
    """The processed (MAD-robustized, feature-selected) per-well profiles with Metadata_Batch added."""
    df = pd.read_csv(data / "morpheus" / "BBBC021_feature_selected_mad_robustize.csv.gz")
    df["Metadata_Batch"] = df["Metadata_Plate"].str.split("_").str[0]
    return df


def profile_raw(raw: pd.DataFrame, normalize: str, select: str, spherize: float | None,
                by_plate: bool = True) -> pd.DataFrame:
    """The tool's chain on the raw wells: normalise vs DMSO (per plate or pooled), select, optionally spherize."""
    from stratonet.profile import ProfileConfig, run_profile

    return run_profile(raw, ProfileConfig(aggregate_level=None, normalize_method=normalize, by_plate=by_plate,
                                    reference="negcon", select=select, spherize=spherize is not None,
                                    spherize_epsilon=spherize if spherize is not None else 1e-6))


def scores(profiles: pd.DataFrame) -> dict:
    """NSC and NSCB (batch = week) 1-NN MoA accuracy, cosine, median per compound + concentration."""
    from stratonet.evaluate.retrieval import nsc_predictions

    pred = nsc_predictions(profiles, label="Metadata_moa", treatment=["Metadata_Compound", "Metadata_Concentration"],
                           batch="Metadata_Batch", metric="cosine")
    out = {}
    for p in ("nsc", "nscb"):
        ok = pred[f"{p}_evaluable"]
        out[p] = float(pred.loc[ok, f"{p}_correct"].mean())
        out[f"{p}_n"] = int(ok.sum())
    return out


def run_grid(data: Path = DEFAULT_DATA) -> pd.DataFrame:
    """Score every configuration of :data:`GRID`; one row per configuration."""
    raw = load_raw(data)
    rows = []
    for by_plate, norm, sel, sph in itertools.product(GRID["by_plate"], GRID["normalize"], GRID["select"],
                                                      GRID["spherize"]):
        from stratonet.core.errors import StratoNetError

        t0 = time.perf_counter()
        config = {"by_plate": by_plate, "normalize": norm, "select": sel, "spherize_epsilon": sph}
        try:
            prof = profile_raw(raw, norm, sel, sph, by_plate)
        except StratoNetError as exc:  # e.g. per-plate centring leaves the DMSO matrix rank-deficient
            rows.append({**config, "error": str(exc)[:120]})
            print(rows[-1], flush=True)
            continue
        feats = prof.attrs["steps"][-1]["features"]
        rows.append({**config, "features": feats, **scores(prof), "seconds": round(time.perf_counter() - t0, 2)})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/quality/bbbc021_grid.csv"))
    args = ap.parse_args()
    base = scores(load_morpheus(args.data))
    print("morpheus (processed profiles):", base)
    grid = run_grid(args.data)
    grid.to_csv(args.out, index=False)
    best = grid.sort_values(["nsc", "nscb"], ascending=False).iloc[0]
    print("best:", best.to_dict())


if __name__ == "__main__":
    main()
