"""BBBC013 protocol for `train ssl`: train on the plate's own images (labels never read), extract, score.

For each backbone: ``stratonet train ssl`` on the 96 BBBC013 sites (``--minutes`` each), then ``extract deep``
with the teacher (whole fields at their native 640 px, plate scaling: the tool's default), and the same
extraction with the baselines (ImageNet EfficientNet-Lite0; the untrained backbone, seed 0). Each feature table is
scored twice:

- the independent scorer of benchmarks/quality/bbbc013_targets.py: L2 logistic regression (C = 0.1) on standardised well
  profiles, fitted on the 24 control wells, each control scored leave-one-out; Z' between controls and Spearman
  with the dose index over all 96 wells;
- the tool's default readout (benchmarks/quality/bbbc013_assay.py ``profile_assay``: well medians, mad_robustize vs
  negcon, ``logistic:top_k=25``): Z' and Spearman over the 72 dose wells.

The labels (control type, dose) are read only by the scorers, never by training. Usage (repository root)::

    PYTHONPATH=src python benchmarks/quality/ssl_protocol.py --work /tmp/ssl_bbbc013 --minutes 10 \\
        --arm lite0 --arm stratonet18

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
    return {"features": name, "z_prime_independent": round(ind["z_prime"], 3),
            "spearman_independent": round(ind["spearman"], 3), "z_prime_tool": round(tool["z_prime"], 3),
            "spearman_tool_dose_wells": round(tool["spearman_dose"], 3), "n_features": ind["n_features"], **facts,
            "load_average": load_average()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/ssl_bbbc013"))
    ap.add_argument("--arm", action="append", choices=sorted(ARMS), help="Backbones to train (repeatable).")
    ap.add_argument("--minutes", type=float, default=30.0, help="train ssl --minutes per arm.")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--extract-options", default="", help="Extra extract deep options for every table, e.g. "
                                                           "'--mode cells'.")
    args = ap.parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    index = bbbc013_index()
    # the training index holds no label column at all: train ssl cannot read what is not there
    train_index = work / "index_unlabelled.parquet"
    index.drop(columns=["Metadata_control_type", "Metadata_dose_index"]).to_parquet(train_index)
    full_index = work / "index.parquet"
    index.to_parquet(full_index)
    extra = args.extract_options.split()
    rows = []
    for arm in args.arm or ["lite0", "stratonet18"]:
        model, train_opts, baselines = ARMS[arm]
        run = work / f"ssl_{arm}"
        teacher = run / "train" / f"ssl_{model}" / "teacher"
        train_s = None
        if not teacher.with_suffix(".json").exists():
            load_before = load_average()
            train_s = stratonet("train", "ssl", train_index, "-o", run, "--model", model, "--minutes", args.minutes,
                                "--batch-size", args.batch_size, *train_opts)
            print(f"{arm}: train ssl {train_s:.0f} s wall, load average before {load_before}, after "
                  f"{load_average()}", flush=True)
        card = json.loads(teacher.with_suffix(".json").read_text())
        tr = card["training"]
        tables = {f"ssl_{arm}": ["--weights", teacher], **baselines}
        for name, opts in tables.items():
            path, facts = extract(work, name + ("_" + "_".join(o.strip("-") for o in extra) if extra else ""),
                                  full_index, opts, extra)
            if name.startswith("ssl_"):
                facts.update({"train_steps": tr["steps_done"], "train_s": tr["seconds"],
                              "train_stopped_by": tr["stopped_by"], "loss_first": tr["loss_first"],
                              "loss_last": tr["loss_last"], "train_cells": card["training_data"]["n_cells"]})
            row = score(name, path, facts, index)
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
            with open(work / "ssl_protocol.jsonl", "a") as fh:
                fh.write(json.dumps(row, default=str) + "\n")
    print("\n| features | Z' (independent) | Spearman (independent) | Z' (tool readout) | Spearman (tool, dose wells) |"
          "\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['features']} | {r['z_prime_independent']:.3f} | {r['spearman_independent']:.3f} | "
              f"{r['z_prime_tool']:.3f} | {r['spearman_tool_dose_wells']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
