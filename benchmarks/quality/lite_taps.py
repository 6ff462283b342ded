"""Which taps of EfficientNet-Lite0 (ImageNet weights) to use as features: every variant on both benchmark plates.

For each tap set, one run of ``extract deep --weights efficientnet_lite0.in1k --taps ...`` (default mode, native
input size and plate scaling) on

* BBBC013 (real, 96 wells): Z' (with its bootstrap 95 % CI) and dose Spearman of ``evaluate assay``'s default
  readout, through :func:`bbbc013_assay.profile_assay`;
* the synthetic 96-well plate of ``benchmarks/quality/synth_moa.py`` (320 px, seed 0): MoA macro-F1 over 7 classes and over
  the six MoAs, with wells held out (:func:`synth_moa.moa_f1`).

Two untrained baselines run on the synthetic plate in the same process: EfficientNet-Lite0 (seed 0, the default
taps) and StratoNet-50 (seed 0). The tap sets were chosen by hand; the winner is chosen on these same two plates, so
its figures are optimistic for other data.

    PYTHONPATH=src python benchmarks/quality/lite_taps.py --out /tmp/lite_taps
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / _d) for _d in ("speed", "quality")]
from bbbc013_assay import profile_assay  # noqa: E402
from bbbc013_targets import bbbc013_index  # noqa: E402
from synth_moa import moa_f1, synth_index  # noqa: E402

LITE0 = "efficientnet_lite0.in1k"
#: label -> taps (None = the model's default); blocks.4/7/10/14/15 end stages 3/4/5/6/7, head_act is the
#: 1280-channel head (the previous default was blocks.4, blocks.10, head_act)
VARIANTS = {
    "b4, b10, head_act (previous default)": ["blocks.4", "blocks.10", "head_act"],
    "b10, b14, head_act": ["blocks.10", "blocks.14", "head_act"],
    "b4, b10, b14, head_act": ["blocks.4", "blocks.10", "blocks.14", "head_act"],
    "b4, b10, b15": ["blocks.4", "blocks.10", "blocks.15"],
    "b4, b10, b14": ["blocks.4", "blocks.10", "blocks.14"],
    "b4, b10, b14, b15": ["blocks.4", "blocks.10", "blocks.14", "blocks.15"],
    "b7, b10, b14 (default)": None,
}


def main(argv: list[str] | None = None) -> int:
    from stratonet.runtime import extract_deep

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/lite_taps"))
    ap.add_argument("--skip-baselines", action="store_true", help="only the pretrained tap sets")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    b13 = bbbc013_index()
    syn = synth_index(args.out, 96, 1, 320, 0)
    rows = []

    def synth_f1(table: pd.DataFrame) -> dict:
        f7, f6 = moa_f1(table, treated_only=False), moa_f1(table, treated_only=True)
        return {"f1_7": f7[0], "f1_7_sd": f7[1], "f1_6": f6[0], "f1_6_sd": f6[1]}

    for label, taps in VARIANTS.items():
        t0 = time.perf_counter()
        man = extract_deep(b13, args.out / "b13.parquet", weights=LITE0, taps=taps, progress=False, overwrite=True)
        fig = profile_assay(pd.read_parquet(args.out / "b13.parquet"))
        extract_deep(syn, args.out / "syn.parquet", weights=LITE0, taps=taps, progress=False, overwrite=True)
        row = {"features": f"Lite0 ImageNet: {label}", "taps": man["provenance"]["taps"],
               "features_per_channel": man["features"] // 2, "z_prime": fig["z_prime"],
               "z_prime_ci95": fig["z_prime_ci95"], "spearman": fig["spearman_dose"],
               **synth_f1(pd.read_parquet(args.out / "syn.parquet")), "wall_s": time.perf_counter() - t0}
        rows.append(row)
        print(json.dumps(row, default=str), flush=True)
    if not args.skip_baselines:
        for label, model in (("Lite0 untrained (seed 0), default taps", "efficientnet_lite0"),
                             ("StratoNet-50 untrained (seed 0)", "stratonet50")):
            man = extract_deep(syn, args.out / "syn.parquet", model=model, progress=False, overwrite=True)
            row = {"features": label, "taps": man["provenance"]["taps"], "features_per_channel": None,
                   "z_prime": None, "z_prime_ci95": None, "spearman": None,
                   **synth_f1(pd.read_parquet(args.out / "syn.parquet"))}
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
    (args.out / "lite_taps.json").write_text(json.dumps(rows, indent=2, default=str))
    print("\n| features | per channel | BBBC013 Z' [95 % CI] | BBBC013 dose Spearman | synthetic macro-F1, 7 classes "
          "| synthetic macro-F1, 6 MoAs |\n|---|---|---|---|---|---|")
    for r in rows:
        z = (f"{r['z_prime']:.3f} [{r['z_prime_ci95'][0]:.2f}, {r['z_prime_ci95'][1]:.2f}]"
             if r["z_prime"] is not None else "-")
        rho = f"{r['spearman']:.3f}" if r["spearman"] is not None else "-"
        print(f"| {r['features']} | {r['features_per_channel'] or '-'} | {z} | {rho} | {r['f1_7']:.3f} ± "
              f"{r['f1_7_sd']:.3f} | {r['f1_6']:.3f} ± {r['f1_6_sd']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
