"""Accuracy targets of the default deep features, as a benchmark (formerly tests in tests/e2e/test_pretrained_targets.py).

1. BBBC013 (96 wells, native 640 px, 2 channels): the default `extract deep` (bundled ImageNet EfficientNet-Lite0,
   whole field, plate scaling) profiled and read out by ``benchmarks/quality/bbbc013_assay.py``'s route reaches Z' >= 0.5
   and dose Spearman >= 0.9 (measured 0.504 and 0.936 when the taps were chosen).
2. Synthetic 96-well plate (``stratonet synth``, 320 px, 1 site): MoA macro-F1 over 7 classes with wells held out;
   the default pretrained features beat an untrained StratoNet-50's (measured 0.990 against 0.972).

Usage (from the repository root; ``make bench`` runs it)::

    PYTHONPATH=src python benchmarks/quality/pretrained_targets.py --work /tmp/pretrained_targets \\
        [--wells 96 --size 320] [--skip-bbbc013]

Prints one line per target and writes ``<work>/pretrained_targets.json``; exit 1 when a target is missed. The suite
keeps fast guards: tests/e2e/test_walkthrough_bbbc013.py checks target 1 on the walkthrough's own extraction, and
tests/e2e/test_pretrained_targets.py runs target 2's code on a small plate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # benchmarks/: bbbc013_assay, bbbc013_targets, synth_moa

LITE0 = "efficientnet_lite0.in1k"


def bbbc013_target(work: Path) -> dict:
    """Target 1: Z' and dose Spearman of the default deep features on BBBC013."""
    from bbbc013_assay import profile_assay
    from bbbc013_targets import bbbc013_index

    from stratonet.runtime import extract_deep

    out = work / "bbbc013_deep.parquet"
    t0 = time.perf_counter()
    man = extract_deep(bbbc013_index(), out, progress=False)  # the defaults, as a user gets them
    fig = profile_assay(pd.read_parquet(out), n_boot=50)
    return {"target": "bbbc013", "weights": man["provenance"]["weights"], "z_prime": fig["z_prime"],
            "z_prime_ci95": fig["z_prime_ci95"], "spearman_dose": fig["spearman_dose"],
            "met": fig["z_prime"] >= 0.5 and fig["spearman_dose"] >= 0.9,
            "seconds": round(time.perf_counter() - t0, 1)}


def synthetic_target(work: Path, wells: int = 96, size: int = 320, seed: int = 0, input_size: int | None = None,
                     seeds: int = 3) -> dict:
    """Target 2: macro-F1 of the default pretrained features against untrained StratoNet-50's.

    ``input_size`` (default: each model's default) and ``seeds`` (cross-validation repeats) only make the test
    suite's guard cheaper; the benchmark uses the defaults.
    """
    from synth_moa import moa_f1, synth_index

    from stratonet.runtime import extract_deep

    t0 = time.perf_counter()
    index = synth_index(work / f"synth_{wells}_{size}", wells, 1, size, seed)
    pre_t, raw_t = work / f"synth_{wells}_{size}_pre.parquet", work / f"synth_{wells}_{size}_raw.parquet"
    extract_deep(index, pre_t, weights=LITE0, progress=False, overwrite=True, input_size=input_size)
    extract_deep(index, raw_t, weights="none", model="stratonet50", progress=False, overwrite=True,
                 input_size=input_size)
    pre, _ = moa_f1(pd.read_parquet(pre_t), treated_only=False, seeds=seeds)
    raw, _ = moa_f1(pd.read_parquet(raw_t), treated_only=False, seeds=seeds)
    return {"target": "synthetic", "wells": wells, "size": size, "macro_f1_pretrained": pre,
            "macro_f1_untrained": raw, "met": pre > raw, "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/pretrained_targets"))
    ap.add_argument("--wells", type=int, default=96)
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--skip-bbbc013", action="store_true")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [] if args.skip_bbbc013 else [bbbc013_target(args.work)]
    rows.append(synthetic_target(args.work, args.wells, args.size))
    for r in rows:
        print(json.dumps(r), flush=True)
    (args.work / "pretrained_targets.json").write_text(json.dumps(rows, indent=2))
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
