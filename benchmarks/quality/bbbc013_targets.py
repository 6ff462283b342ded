"""BBBC013 (FKHR-GFP translocation, one real 96-well plate): Z' and dose response of each feature set.

Readout (out of sample: no well scores itself): an L2 logistic regression (C = 0.1) on standardised well profiles,
fitted on the control wells only (8 positive, 16 negative). Each control well is scored by the model fitted on the
other 23 controls (leave-one-out; the standardisation is fitted inside each fold); the 72 dose wells are scored by
the model fitted on all 24 controls. The readout is the decision function (log-odds of "positive").

Reported per feature set: Z'-factor between positive and negative controls on that readout, and the Spearman
correlation of the readout with the dose index over all 96 wells (negative controls 0, doses 1-9, positive
controls 10).

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/quality/bbbc013_targets.py --out /tmp/bbbc013 \\
        --config deep/stratonet50/none/whole/image --config pixel/16/image --config classical

A config is ``deep/<model>/<weights or none>/<mode>[@px]/<scaling>[/center]`` (``whole@448``: the field resized
to a 448 px input; ``tiles@112``: 112 px native tiles; ``cells@96``: 96 px crops around 24 sampled nuclei per site), ``pixel/<size>/<scaling>`` or
``classical``. Feature tables are cached under ``--out`` (a rerun reuses them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bbbc013_translocation"


def bbbc013_index(data_dir: Path = DATA) -> pd.DataFrame:
    """One index row per well (one field each): GFP and DNA paths, control type and dose index."""
    meta = pd.read_csv(data_dir / "metadata.csv")
    return pd.DataFrame({
        "Metadata_Plate": meta["plate"].astype(str), "Metadata_Well": meta["well"].astype(str), "Metadata_Site": 1,
        "Metadata_control_type": meta["control_type"], "Metadata_dose_index": meta["dose_index"].astype(int),
        "Path_GFP": [str(data_dir / f) for f in meta["file_gfp"]],
        "Path_DNA": [str(data_dir / f) for f in meta["file_dna"]],
    })


def feature_matrix(table: pd.DataFrame) -> np.ndarray:
    """Numeric non-metadata columns, finite everywhere and not constant, as float64."""
    feats = table[[c for c in table.columns if not str(c).startswith("Metadata_")]]
    feats = feats.select_dtypes(include=[np.number]).astype(np.float64)
    feats = feats.loc[:, np.isfinite(feats.to_numpy()).all(axis=0)]
    x = feats.to_numpy()
    return x[:, x.std(axis=0) > 0]


def control_readout(x: np.ndarray, control_type: np.ndarray, c: float = 0.1) -> np.ndarray:
    """Out-of-sample readout per well: leave-one-out for control wells, all-controls model for the others."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pos = control_type == "positive_control"
    neg = control_type == "negative_control"
    ctrl = np.flatnonzero(pos | neg)
    y = pos.astype(int)

    def fit(rows):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        return model.fit(x[rows], y[rows])

    score = np.empty(len(x))
    for i in ctrl:
        score[i] = fit(ctrl[ctrl != i]).decision_function(x[[i]])[0]
    rest = np.flatnonzero(~(pos | neg))
    if rest.size:
        score[rest] = fit(ctrl).decision_function(x[rest])
    return score


def z_prime(pos: np.ndarray, neg: np.ndarray) -> float:
    """Zhang et al. (1999): 1 - 3 (sd_pos + sd_neg) / |mean_pos - mean_neg| (sample standard deviations)."""
    return float(1 - 3 * (np.std(pos, ddof=1) + np.std(neg, ddof=1)) / abs(np.mean(pos) - np.mean(neg)))


def assay_figures(table: pd.DataFrame, index: pd.DataFrame | None = None) -> dict:
    """Z' between controls and dose Spearman of the control readout of one well-level feature table."""
    from scipy.stats import spearmanr

    index = bbbc013_index() if index is None else index
    meta = index[["Metadata_Well", "Metadata_control_type", "Metadata_dose_index"]]
    tab = table.drop(columns=[c for c in ("Metadata_control_type", "Metadata_dose_index") if c in table.columns])
    tab = meta.merge(tab, on="Metadata_Well", how="inner", validate="one_to_one")
    if len(tab) != len(index):
        raise ValueError(f"feature table covers {len(tab)} of {len(index)} wells")
    x = feature_matrix(tab)
    ctype = tab["Metadata_control_type"].to_numpy()
    score = control_readout(x, ctype)
    pos, neg = score[ctype == "positive_control"], score[ctype == "negative_control"]
    rho = spearmanr(score, tab["Metadata_dose_index"].to_numpy()).statistic
    return {"z_prime": z_prime(pos, neg), "spearman": float(rho), "n_features": int(x.shape[1]),
            "n_wells": int(len(tab))}


CELLS_PER_SITE = 24
CELL_CROP = 64


def sampled_centers(index: pd.DataFrame, out: Path, per_site: int = CELLS_PER_SITE, seed: int = 0) -> Path:
    """Otsu nucleus centres on DNA, at most ``per_site`` per site (seeded sample), as a centres table.

    Cells mode on every nucleus would be ~44,000 channel crops on this plate; a fixed sample keeps the benchmark
    within minutes on a CPU.
    """
    from stratonet.extract.deep.cells import otsu_centers
    from stratonet.images.io import read_image

    path = out / f"centers_{per_site}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    rows = []
    for r in index.itertuples(index=False):
        c = otsu_centers(read_image(r.Path_DNA))
        pick = np.sort(rng.choice(len(c), size=min(per_site, len(c)), replace=False))
        rows += [{"Metadata_Plate": r.Metadata_Plate, "Metadata_Well": r.Metadata_Well, "Metadata_Site": 1,
                  "Nuclei_Location_Center_Y": float(c[k, 0]), "Nuclei_Location_Center_X": float(c[k, 1])}
                 for k in pick]
    pd.DataFrame(rows).to_parquet(path)
    return path


def run_config(config: str, index: pd.DataFrame, out: Path, batch_size: int = 64) -> tuple[pd.DataFrame, dict]:
    """Extract (or reuse) the well table of one config; returns it and the extraction facts."""
    parts = config.split("/")
    name = config.replace("/", "_")
    kind = parts[0]
    t0 = time.perf_counter()
    facts: dict = {}
    if kind == "deep":
        from stratonet.runtime import extract_deep

        model, weights, mode, scaling = parts[1:5]
        center = len(parts) > 5 and parts[5] == "center"
        path = out / f"{name}.parquet"
        if not path.exists():
            mode, _, side = mode.partition("@")  # tiles@112: 112 px native tiles; cells@96: 96 px crops
            if mode == "cells":
                cells = dict(centers=sampled_centers(index, out), crop_size=int(side or CELL_CROP))
            elif mode == "whole":  # whole@448: the field resized to a 448 px network input
                cells = {"input_size": int(side)} if side else {}
            else:
                cells = {"tile_size": int(side)} if side else {}
            man = extract_deep(index, path, model=None if weights != "none" else model, **cells,
                               weights=None if weights == "none" else weights, mode=mode, scaling=scaling,
                               center_object=center, batch_size=batch_size, workers=1, progress=False)
            facts = {"weights": man["provenance"]["weights"], "extract_wall_s": round(man["wall_s"], 1),
                     "model_images": man["model_images"]}
        table = pd.read_parquet(path)
    elif kind == "pixel":
        from stratonet.runtime import extract_pixel

        size, scaling = int(parts[1]), parts[2]
        path = out / f"{name}.parquet"
        if not path.exists():
            extract_pixel(index, path, size=size, scaling=scaling)
        table = pd.read_parquet(path)
    elif kind == "classical":
        from stratonet.runtime import extract_classical

        folder = out / "classical"
        if not (folder / "well.parquet").exists():
            extract_classical(index, folder, workers=1)
        table = pd.read_parquet(folder / "well.parquet")
    else:
        raise ValueError(f"unknown config {config!r}")
    facts.setdefault("wall_s_this_run", round(time.perf_counter() - t0, 1))
    return table, facts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/bbbc013"))
    ap.add_argument("--config", action="append", required=True)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    index = bbbc013_index()
    results = []
    for cfg in args.config:
        table, facts = run_config(cfg, index, args.out, args.batch_size)
        fig = assay_figures(table, index)
        row = {"config": cfg, **fig, **facts}
        results.append(row)
        print(json.dumps(row), flush=True)
        with open(args.out / "results.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
    print("\n| config | Z' | dose Spearman | features |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['config']} | {r['z_prime']:.2f} | {r['spearman']:.2f} | {r['n_features']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
