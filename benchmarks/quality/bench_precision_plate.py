"""Profile-level effect of the extraction precision: MoA classification on a synthetic plate, fp32 vs bf16.

A synthetic plate (``stratonet.synth``) is extracted once per precision with the same untrained StratoNet-50; site
features are averaged per well, standardised, and a linear SVM predicts ``Metadata_moa`` in stratified 5-fold
cross-validation over wells (identical folds for every precision; DMSO wells are a class). Reported: accuracy and
macro-F1 per precision, their differences from fp32, and the per-well-profile cosine to fp32. Example::

    PYTHONPATH=src python benchmarks/quality/bench_precision_plate.py --wells 96 --sites 1 --size 540 --out /tmp/bench-plate
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC


def well_profiles(table: Path) -> pd.DataFrame:
    df = pd.read_parquet(table)
    feats = [c for c in df.columns if not c.startswith("Metadata_")]
    return df.groupby(["Metadata_Well", "Metadata_moa"], as_index=False)[feats].mean()


def score(profiles: pd.DataFrame, folds) -> dict:
    feats = [c for c in profiles.columns if not c.startswith("Metadata_")]
    x, y = profiles[feats].to_numpy(np.float64), profiles["Metadata_moa"].to_numpy()
    pred = np.empty_like(y)
    for train, test in folds:
        clf = make_pipeline(StandardScaler(), LinearSVC(C=0.01, max_iter=5000))
        clf.fit(x[train], y[train])
        pred[test] = clf.predict(x[test])
    return {"accuracy": accuracy_score(y, pred), "macro_f1": f1_score(y, pred, average="macro")}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wells", type=int, default=96)
    ap.add_argument("--sites", type=int, default=1)
    ap.add_argument("--size", type=int, default=540, help="synthetic image side (px)")
    ap.add_argument("--precisions", default="fp32,bf16", help="as extract_deep offers them (int8 is not)")
    ap.add_argument("--model", default="stratonet50")
    ap.add_argument("--out", type=Path, default=Path("/tmp/stratonet-bench-plate"))
    args = ap.parse_args(argv)

    from stratonet.runtime import extract_deep
    from stratonet.index import build_index
    from stratonet.runtime import make_plate

    plate_dir = args.out / "plate"
    make_plate(plate_dir, wells=args.wells, sites=args.sites, size=args.size, seed=0, progress=False)
    index = build_index(plate_dir / "load_data.csv", "loaddata")
    res: dict = {"wells": args.wells, "sites": args.sites, "size": args.size, "model": args.model}
    profiles = {}
    for prec in args.precisions.split(","):
        t0 = time.perf_counter()
        man = extract_deep(index, args.out / f"deep_{prec}.parquet", model=args.model, precision=prec,
                           overwrite=True, progress=False)
        res[f"{prec}_wall_s"] = time.perf_counter() - t0
        res[f"{prec}_ran_as"] = man["precision"]["precision"]
        profiles[prec] = well_profiles(args.out / f"deep_{prec}.parquet")
    ref = profiles["fp32"]
    y = ref["Metadata_moa"].to_numpy()
    n_splits = int(min(5, pd.Series(y).value_counts().min()))
    folds = list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    res["classes"] = int(pd.Series(y).nunique())
    res["folds"] = n_splits
    feats = [c for c in ref.columns if not c.startswith("Metadata_")]
    for prec, prof in profiles.items():
        assert (prof["Metadata_Well"].to_numpy() == ref["Metadata_Well"].to_numpy()).all()
        res[prec] = score(prof, folds)
        a, b = ref[feats].to_numpy(np.float64), prof[feats].to_numpy(np.float64)
        res[prec]["well_cosine_min"] = float(((a * b).sum(1) / np.linalg.norm(a, axis=1)
                                              / np.linalg.norm(b, axis=1)).min())
    print(f"{args.model}, synthetic plate {args.wells} wells x {args.sites} site(s), {args.size} px, "
          f"{res['classes']} MoA classes, {n_splits}-fold CV over wells, linear SVM on standardised well profiles")
    print("| precision | accuracy | macro-F1 | delta accuracy vs fp32 (points) | delta macro-F1 (points) | "
          "min well-profile cosine to fp32 | extraction wall s |\n|---|---|---|---|---|---|---|")
    for prec in profiles:
        r = res[prec]
        print(f"| {prec} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | "
              f"{100 * (r['accuracy'] - res['fp32']['accuracy']):+.1f} | "
              f"{100 * (r['macro_f1'] - res['fp32']['macro_f1']):+.1f} | {r['well_cosine_min']:.5f} | "
              f"{res[f'{prec}_wall_s']:.0f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_precision_plate.json").write_text(json.dumps(res, indent=2, default=str))
    return res


if __name__ == "__main__":
    main()
