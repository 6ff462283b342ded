"""Synthetic 96-well plate: MoA macro-F1 of each feature set with a split that holds out wells.

The plate comes from ``stratonet synth`` (47 treated wells over six MoAs and three doses, 49 DMSO wells). Each
feature table is averaged per well; a standardised L2 logistic regression (C = 1) is scored by stratified 5-fold
cross-validation over wells (a well's sites are never on both sides), repeated over 5 seeds. Reported: macro-F1
over the 7 classes (six MoAs + DMSO) and over the six MoAs only (treated wells).

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/quality/synth_moa.py --out /tmp/synth_moa --size 320 --sites 1 \\
        --config deep/efficientnet_lite0/<weights>/whole/plate --config deep/stratonet50/none/whole/plate \\
        --config classical --config pixel/16/plate

Configs are those of ``benchmarks/quality/bbbc013_targets.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / _d) for _d in ("speed", "quality")]
from bbbc013_targets import feature_matrix, run_config  # noqa: E402


def synth_index(out: Path, wells: int, sites: int, size: int, seed: int) -> pd.DataFrame:
    """Render (or reuse) the plate and index it."""
    from stratonet.index import build_index
    from stratonet.runtime import make_plate

    plate_dir = out / "plate"
    make_plate(plate_dir, wells=wells, sites=sites, seed=seed, size=size, progress=False)
    return build_index(plate_dir / "load_data.csv")


def moa_f1(table: pd.DataFrame, treated_only: bool, seeds: int = 3) -> tuple[float, float]:
    """Mean and sd over seeds of the macro-F1 of 5-fold CV over wells."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    feats = [c for c in table.columns if not str(c).startswith("Metadata_")]
    keys = ["Metadata_Plate", "Metadata_Well"]
    means = table.groupby(keys)[feats].mean()
    labels = table.groupby(keys)[["Metadata_moa", "Metadata_control_type"]].first()
    wells = labels.join(means).reset_index()
    label = wells["Metadata_moa"].fillna("DMSO").astype(str).to_numpy()
    keep = (wells["Metadata_control_type"] != "negcon").to_numpy() if treated_only else np.ones(len(wells), bool)
    x, y = feature_matrix(wells[keep]), label[keep]
    scores = []
    for s in range(seeds):
        cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=s)
        # liblinear's dual solver: fast when features (thousands) far outnumber wells (96); one-vs-rest
        model = make_pipeline(StandardScaler(), OneVsRestClassifier(
            LogisticRegression(C=1.0, solver="liblinear", dual=True, max_iter=5000)))
        pred = cross_val_predict(model, x, y, cv=cv)
        scores.append(f1_score(y, pred, average="macro"))
    return float(np.mean(scores)), float(np.std(scores))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/synth_moa"))
    ap.add_argument("--config", action="append", required=True)
    ap.add_argument("--wells", type=int, default=96)
    ap.add_argument("--sites", type=int, default=1)
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    index = synth_index(args.out, args.wells, args.sites, args.size, args.seed)
    rows = []
    for cfg in args.config:
        table, facts = run_config(cfg, index, args.out)
        if cfg == "classical":
            table = table.merge(index.drop_duplicates(["Metadata_Plate", "Metadata_Well"])[
                ["Metadata_Plate", "Metadata_Well", "Metadata_moa", "Metadata_control_type"]],
                on=["Metadata_Plate", "Metadata_Well"], how="left", suffixes=("_x", ""))
        all_f1, all_sd = moa_f1(table, treated_only=False)
        trt_f1, trt_sd = moa_f1(table, treated_only=True)
        row = {"config": cfg, "macro_f1_7class": all_f1, "sd_7class": all_sd, "macro_f1_moa_only": trt_f1,
               "sd_moa_only": trt_sd, **facts}
        rows.append(row)
        print(json.dumps(row), flush=True)
        with open(args.out / "results.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
    print("\n| config | macro-F1 (7 classes) | macro-F1 (6 MoAs, treated wells) |\n|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['macro_f1_7class']:.3f} ± {r['sd_7class']:.3f} | "
              f"{r['macro_f1_moa_only']:.3f} ± {r['sd_moa_only']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
