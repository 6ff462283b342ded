"""Agreement of StratoNet's classical path with CellProfiler on the two real JUMP fields of view.

Segmentation: our nuclei / cells vs CellProfiler's outlines (filled to labels): counts and F1 at IoU >= 0.5.
Measurements: AreaShape and Intensity measured by us on CellProfiler's own objects vs CellProfiler's values
for the few cells in each FOV's parquet, matched by location.

Run: PYTHONPATH=src /work/venv/bin/python benchmarks/quality/cp_agreement.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.extract.classical.agreement import fov_agreement
from stratonet.extract.classical.labels import read_labels
from stratonet.extract.classical.run import scale_to_unit
from stratonet.images.io import read_image

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cytodataframe_fov"

FOVS = {
    "JUMP BR00117006 A01 (3 ch)": {
        "dir": "JUMP_plate_BR00117006",
        "channels": {"AGP": "r01c01f01p01-ch2sk1fk1fl1.tiff", "RNA": "r01c01f01p01-ch3sk1fk1fl1.tiff",
                     "DNA": "r01c01f01p01-ch5sk1fk1fl1.tiff"},
        "nuclei": "r01c01f01p01-ch5sk1fk1fl1_nuclei_outlines.png",
        "cells": "r01c01f01p01-ch3sk1fk1fl1_cell_outlines.png",
        "table": "BR00117006_shrunken.parquet",
        "cp_names": {"AGP": "AGP", "RNA": "RNA", "DNA": "DNA"},
    },
    "pediatric BR00143976 C03 s3 (5 ch)": {
        "dir": "pediatric_cancer_atlas_profiling",
        "channels": {"ER": "r03c03f03p01-ch2sk1fk1fl1.tiff", "AGP": "r03c03f03p01-ch3sk1fk1fl1.tiff",
                     "Mito": "r03c03f03p01-ch4sk1fk1fl1.tiff", "DNA": "r03c03f03p01-ch5sk1fk1fl1.tiff",
                     "RNA": "r03c03f03p01-ch6sk1fk1fl1.tiff"},
        "nuclei": "NucleiOutlines_BR00143976_C03_3.tiff",
        "cells": "CellsOutlines_BR00143976_C03_3.tiff",
        "table": "BR00143976_shrunken.parquet",
        "cp_names": {c: f"Corr{c}" for c in ["ER", "AGP", "Mito", "DNA", "RNA"]},
    },
}


def run_fov(spec: dict, data: Path = DATA) -> dict:
    """Agreement figures of one FOV (see :func:`stratonet.extract.classical.agreement.fov_agreement`)."""
    d = data / spec["dir"] / "images"
    chans = list(spec["channels"])
    img = scale_to_unit(np.stack([read_image(d / "orig" / f) for f in spec["channels"].values()]).astype(np.float32))
    nuc = read_labels(d / "outlines" / spec["nuclei"])
    cells = read_labels(d / "outlines" / spec["cells"], seeds=nuc)
    table = pd.read_parquet(data / spec["dir"] / spec["table"])
    return fov_agreement(img, chans, nuc, cells, table, spec["cp_names"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures as JSON.")
    args = ap.parse_args()
    out = {}
    for name, spec in FOVS.items():
        res = run_fov(spec)
        seg = res["segmentation"]
        print(f"\n### {name}")
        print("| objects | ours | CellProfiler | count ratio | matched | precision | recall | F1 (IoU>=0.5) | mean IoU |")
        print("|---|---|---|---|---|---|---|---|---|")
        for comp, m in seg.items():
            print(f"| {comp} | {m['n_pred']} | {m['n_truth']} | {m['count_ratio']:.3f} | {m['matched']} | "
                  f"{m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['mean_iou_matched']:.3f} |")
        v = res["values"]
        print(f"\nCellProfiler cells located: {res['n_located']} / {res['n_cp_cells']}")
        print("\n| feature | n | median rel. error | max rel. error | Pearson r |")
        print("|---|---|---|---|---|")
        for r in v.itertuples():
            print(f"| {r.feature} | {r.n} | {r.median_rel_error:.4f} | {r.max_rel_error:.4f} | {r.pearson_r:.3f} |")
        out[name] = {"segmentation": seg, "values": v.to_dict("records")}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
