"""The `train ssl` protocol: train on a plate's own images (labels never read), extract, score; against baselines.

Plates (``--plate``, repeatable): ``bbbc013`` (the real 96-well translocation plate, the main target),
``synthetic`` (``stratonet synth``, 96 wells, 320 px, 7 MoA classes: macro-F1 with wells held out, as
benchmarks/quality/pretrained_targets.py) and ``jump`` (the two real JUMP fields of view: separation of the two
FOVs over 4 x 4 native tiles, as benchmarks/quality/jump_fov_separation.py).

For each backbone: ``stratonet train ssl`` on the 96 BBBC013 sites (``--minutes`` each), then ``extract deep``
with the teacher (whole fields at their native 640 px, plate scaling: the tool's default), and the same
extraction with the baselines (ImageNet EfficientNet-Lite0; the untrained backbone, seed 0). Each feature table is
scored twice:

- the independent scorer of benchmarks/quality/bbbc013_targets.py: L2 logistic regression (C = 0.1) on standardised well
  profiles, fitted on the 24 control wells, each control scored leave-one-out; Z' between controls and Spearman
  with the dose index over all 96 wells;
- the tool's default readout (benchmarks/quality/bbbc013_assay.py ``profile_assay``: well medians, mad_robustize vs
  negcon, ``logistic:top_k=25``): Z' and Spearman over the 72 dose wells.

The labels (control type, dose, MoA) are read only by the scorers, never by training: the training index keeps
only the site keys and the image columns. Usage (repository root)::

    PYTHONPATH=src python benchmarks/quality/ssl_protocol.py --work /tmp/ssl_bbbc013 --minutes 30 \\
        --arm lite0 --arm stratonet18 [--plate bbbc013 --plate synthetic --plate jump]

Everything is cached under ``--work`` (a rerun reuses finished runs and tables); one JSON line per feature set
goes to ``<work>/ssl_protocol.jsonl`` and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "benchmarks" / _d) for _d in ("speed", "quality")]

from bbbc013_assay import profile_assay  # noqa: E402
from bbbc013_targets import assay_figures, bbbc013_index  # noqa: E402

SITE_KEYS = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]

#: arm -> (model, train ssl options, baselines to compare against: name -> extract deep options)
ARMS = {
    "lite0": ("efficientnet_lite0", ["--init", "efficientnet_lite0.in1k", "--lr", "1e-4"],
              {"lite0_imagenet": ["--weights", "efficientnet_lite0.in1k"]}),
    "stratonet18": ("stratonet18", [], {"stratonet18_untrained": ["--model", "stratonet18", "--seed", "0"]}),
    "stratonet50": ("stratonet50", [], {"stratonet50_untrained": ["--model", "stratonet50", "--seed", "0"]}),
}


def stratonet(*args: str) -> float:
    """Run the CLI with this checkout's sources; return the wall time in seconds."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stratonet", *map(str, args)], check=True, env=env)
    return time.perf_counter() - t0


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def extract(work: Path, name: str, index: Path, options: list[str], extra: list[str]) -> tuple[Path, dict]:
    """Extract one feature table (cached); returns its path and manifest facts."""
    out = work / f"{name}.parquet"
    if not out.exists():
        stratonet("extract", "deep", index, "-o", out, *options, *extra)
    man = json.loads(out.with_name(out.stem + ".manifest.json").read_text())
    return out, {"weights": man["provenance"]["weights"], "extract_wall_s": round(man["wall_s"], 1),
                 "input_size": man["provenance"]["input_size"], "mode": man["provenance"]["mode"]}


def score(name: str, table_path: Path, facts: dict, index: pd.DataFrame) -> dict:
    """Both scorers on one site table (one site per well here)."""
    table = pd.read_parquet(table_path)
    ind = assay_figures(table, index)
    tool = profile_assay(table)
    return {"plate": "bbbc013", "features": name, "z_prime_independent": round(ind["z_prime"], 3),
            "spearman_independent": round(ind["spearman"], 3), "z_prime_tool": round(tool["z_prime"], 3),
            "spearman_tool_dose_wells": round(tool["spearman_dose"], 3), "n_features": ind["n_features"], **facts,
            "load_average": load_average()}


def unlabelled(index: pd.DataFrame) -> pd.DataFrame:
    """The index as training sees it: site keys and image columns only (no label can be read)."""
    return index[[c for c in index.columns if not c.startswith("Metadata_") or c in SITE_KEYS]]


def train_arm(work: Path, arm: str, train_index: Path, minutes: float, batch_size: int) -> tuple[Path, dict]:
    """``train ssl`` for one backbone (cached); the teacher checkpoint and the facts of its model card."""
    model, train_opts, _ = ARMS[arm]
    run = work / f"ssl_{arm}"
    teacher = run / "train" / f"ssl_{model}" / "teacher"
    if not teacher.with_suffix(".json").exists():
        load_before = load_average()
        train_s = stratonet("train", "ssl", train_index, "-o", run, "--model", model, "--minutes", minutes,
                            "--batch-size", batch_size, *train_opts)
        print(f"{arm}: train ssl {train_s:.0f} s wall, load average before {load_before}, after "
              f"{load_average()}", flush=True)
    card = json.loads(teacher.with_suffix(".json").read_text())
    tr = card["training"]
    return teacher, {"train_steps": tr["steps_done"], "train_s": tr["seconds"], "train_stopped_by": tr["stopped_by"],
                     "loss_first": tr["loss_first"], "loss_last": tr["loss_last"],
                     "train_cells": card["training_data"]["n_cells"],
                     "train_precision": (tr.get("precision") or {}).get("precision")}


def tables_of(arm: str, teacher: Path) -> dict:
    """Feature sets of one arm: the SSL teacher and its baselines (name -> extract deep options)."""
    return {f"ssl_{arm}": ["--weights", teacher], **ARMS[arm][2]}


def bbbc013_rows(work: Path, arm: str, teacher: Path, train_facts: dict, extra: list[str]) -> list[dict]:
    """BBBC013: both scorers on each feature set of the arm."""
    index = bbbc013_index()
    full_index = work / "index.parquet"
    index.to_parquet(full_index)
    rows = []
    for name, opts in tables_of(arm, teacher).items():
        path, facts = extract(work, name + ("_" + "_".join(o.strip("-") for o in extra) if extra else ""),
                              full_index, opts, extra)
        rows.append(score(name, path, {**facts, **(train_facts if name.startswith("ssl_") else {})}, index))
    return rows


def synthetic_rows(work: Path, arm: str, teacher: Path, train_facts: dict) -> list[dict]:
    """Synthetic plate: macro-F1 (mean and sd over 3 CV seeds) of 5-fold CV over wells."""
    from synth_moa import moa_f1, synth_index

    index_path = work / "synth_index.parquet"
    rows = []
    for name, opts in tables_of(arm, teacher).items():
        path, facts = extract(work, f"synth_{name}", index_path, opts, [])
        f1, sd = moa_f1(pd.read_parquet(path), treated_only=False, seeds=3)
        rows.append({"plate": "synthetic", "features": name, "macro_f1": round(f1, 3), "macro_f1_sd": round(sd, 3),
                     **facts, **(train_facts if name.startswith("ssl_") else {}), "load_average": load_average()})
    return rows


def jump_rows(work: Path, arm: str, teacher: Path, train_facts: dict) -> list[dict]:
    """JUMP fields of view: silhouette, across/within distance and same-FOV 1-NN over 32 native tiles."""
    from jump_fov_separation import fov_index, separation, tile_features

    rows = []
    for name, opts in tables_of(arm, teacher).items():
        weights = str(opts[opts.index("--weights") + 1]) if "--weights" in opts else None
        model = opts[opts.index("--model") + 1] if "--model" in opts else None
        x, lab = tile_features(fov_index(), weights, model, "image", work)
        sep = {k: round(v, 3) for k, v in separation(x, lab).items()}
        rows.append({"plate": "jump", "features": name, **sep, "scaling": "image",
                     **(train_facts if name.startswith("ssl_") else {}), "load_average": load_average()})
    return rows


def plate_training_index(work: Path, plate: str) -> Path:
    """Write the plate's unlabelled training index (and, for the synthetic plate, its full index) under ``work``."""
    if plate == "bbbc013":
        index = bbbc013_index()
    elif plate == "synthetic":
        from synth_moa import synth_index

        index = synth_index(work / "synth", 96, 1, 320, 0)
        index.to_parquet(work / "synth_index.parquet")
    else:
        from jump_fov_separation import fov_index

        index = fov_index()
    path = work / "index_unlabelled.parquet"
    unlabelled(index).to_parquet(path)
    return path


def print_table(rows: list[dict]) -> None:
    """One Markdown table per plate."""
    cols = {"bbbc013": ["z_prime_independent", "spearman_independent", "z_prime_tool", "spearman_tool_dose_wells"],
            "synthetic": ["macro_f1", "macro_f1_sd"], "jump": ["silhouette", "across_within", "nn_same_fov"]}
    for plate, names in cols.items():
        mine = [r for r in rows if r.get("plate", "bbbc013") == plate]
        if mine:
            print(f"\n{plate}\n| features | " + " | ".join(names) + " |\n" + "|---" * (len(names) + 1) + "|")
            for r in mine:
                print(f"| {r['features']} | " + " | ".join(f"{r[n]:.3f}" for n in names) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/ssl_bbbc013"))
    ap.add_argument("--plate", action="append", choices=["bbbc013", "synthetic", "jump"],
                    help="Plates to run (repeatable; default bbbc013). Each trains its own networks.")
    ap.add_argument("--arm", action="append", choices=sorted(ARMS), help="Backbones to train (repeatable).")
    ap.add_argument("--minutes", type=float, default=30.0, help="train ssl --minutes per arm.")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--extract-options", default="", help="Extra extract deep options for every BBBC013 table, "
                                                           "e.g. '--mode cells'.")
    args = ap.parse_args(argv)
    rows = []
    for plate in args.plate or ["bbbc013"]:
        work = args.work if plate == "bbbc013" else args.work / plate  # bbbc013 at the top: older caches reused
        work.mkdir(parents=True, exist_ok=True)
        train_index = plate_training_index(work, plate)
        for arm in args.arm or ["lite0", "stratonet18"]:
            teacher, facts = train_arm(work, arm, train_index, args.minutes, args.batch_size)
            if plate == "bbbc013":
                new = bbbc013_rows(work, arm, teacher, facts, args.extract_options.split())
            else:
                new = (synthetic_rows if plate == "synthetic" else jump_rows)(work, arm, teacher, facts)
            for row in new:
                rows.append(row)
                print(json.dumps(row, default=str), flush=True)
                with open(args.work / "ssl_protocol.jsonl", "a") as fh:
                    fh.write(json.dumps(row, default=str) + "\n")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
