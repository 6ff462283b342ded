"""Retrieval at screen scale: ``evaluate_retrieval`` (mAP activity + consistency, NSC, NSCB) on a large profile table.

Profiles are synthetic: ``--treatments`` compounds x ``--replicates`` wells spread over ``--plates`` plates, plus
``--controls`` DMSO wells, ``--features`` float32 features; each compound has a MoA (``--moas``) whose centre it
shares. Peak RSS is the process's maximum resident set (``ru_maxrss``), which includes the table itself.

    python benchmarks/speed/bench_retrieval.py                       # 50,000 x 1,000
    python benchmarks/speed/bench_retrieval.py --copairs-too --treatments 1500 --controls 2000   # vs copairs' own AP
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd


def make_profiles(treatments: int, replicates: int, controls: int, features: int, moas: int, plates: int,
                  seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(moas, features)).astype(np.float32)
    moa = rng.integers(0, moas, size=treatments)
    n_trt = treatments * replicates
    X = np.empty((n_trt + controls, features), dtype=np.float32)
    for start in range(0, n_trt, 10000):  # fill in chunks to keep the peak at the table itself
        idx = np.arange(start, min(n_trt, start + 10000))
        X[idx] = 0.2 * centres[moa[idx // replicates]] + rng.standard_normal((len(idx), features), dtype=np.float32)
    X[n_trt:] = rng.standard_normal((controls, features), dtype=np.float32)
    comp = np.concatenate([np.repeat(np.arange(treatments), replicates), np.full(controls, -1)])
    meta = pd.DataFrame({
        "Metadata_Plate": [f"P{i % plates:03d}" for i in range(len(X))],
        "Metadata_pert_iname": np.where(comp >= 0, np.char.add("cpd", comp.astype(str)), "DMSO"),
        "Metadata_moa": np.where(comp >= 0, np.char.add("moa", moa[np.maximum(comp, 0)].astype(str)), "control"),
        "Metadata_control_type": np.where(comp >= 0, "trt", "negcon"),
    })
    feats = pd.DataFrame(X, columns=[f"f{i:04d}" for i in range(features)], copy=False)
    return pd.concat([meta, feats], axis=1)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treatments", type=int, default=10000)
    ap.add_argument("--replicates", type=int, default=4)
    ap.add_argument("--controls", type=int, default=10000)
    ap.add_argument("--features", type=int, default=1000)
    ap.add_argument("--moas", type=int, default=50)
    ap.add_argument("--plates", type=int, default=130)
    ap.add_argument("--null-size", type=int, default=10000)
    ap.add_argument("--copairs-too", action="store_true",
                    help="also time copairs' own average_precision on the activity mAP (in memory; small sizes only)")
    args = ap.parse_args()

    from stratonet.evaluate.config import RetrievalConfig
    from stratonet.evaluate.retrieval import evaluate_retrieval

    df = make_profiles(args.treatments, args.replicates, args.controls, args.features, args.moas, args.plates)
    print(f"profiles: {len(df):,} x {args.features:,} features; table {df.memory_usage().sum() / 1e9:.2f} GB; "
          f"peak RSS after building {peak_rss_gb():.2f} GB")
    t0 = time.perf_counter()
    res = evaluate_retrieval(df, RetrievalConfig(treatment=["Metadata_pert_iname"], null_size=args.null_size)).metrics
    dt = time.perf_counter() - t0
    print(f"evaluate_retrieval: {dt:.1f} s; peak RSS {peak_rss_gb():.2f} GB")
    print(f"  mAP activity {res['map_activity']['mean_map']:.3f} over {res['map_activity']['n_groups']} treatments; "
          f"mAP consistency {res['map_consistency']['mean_map']:.3f}; NSC {res['nsc_accuracy']:.3f} "
          f"(n={res['nsc_n']}); NSCB {res['nscb_accuracy']}")
    if args.copairs_too:
        import stratonet.evaluate.retrieval as R

        feats = [c for c in df.columns if not c.startswith("Metadata_")]
        meta = pd.DataFrame({"Metadata_treatment": df["Metadata_pert_iname"].astype(str)})
        neg = (df["Metadata_control_type"] == "negcon").to_numpy()
        meta["Metadata_reference_index"] = np.where(neg, np.arange(len(df)), -1)
        rules = (["Metadata_treatment", "Metadata_reference_index"], [], [],
                 ["Metadata_treatment", "Metadata_reference_index"])
        t0 = time.perf_counter()
        R._copairs_ap(meta, df[feats].to_numpy(np.float32), *rules, "cosine")
        print(f"copairs average_precision (activity only): {time.perf_counter() - t0:.1f} s; "
              f"peak RSS {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
