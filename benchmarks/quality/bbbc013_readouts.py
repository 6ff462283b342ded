"""BBBC013: the default route (`profile` defaults -> `evaluate assay` defaults) per feature set, nested vs reference.

Expects the cached stage outputs of benchmarks/quality/bbbc013_assay.py under --work (index.parquet, classical/site.parquet,
and a deep feature table), runs the two commands through the CLI with no option but the output paths, and prints one
row per feature set: the nested readout's Z' with its bootstrap 95 % interval and chosen settings, the reference
readout's, whether they disagree, what the selection guard kept and the dose fit. Usage::

    PYTHONPATH=src python benchmarks/quality/bbbc013_readouts.py --work /tmp/i25_bbbc013 \
        --set classical=classical/site.parquet --set lite0=deep_l0.parquet
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def stratonet(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run([sys.executable, "-m", "stratonet", *args], check=True, env=env)


def route(work: Path, name: str, table: Path, controls: tuple[str, ...] = ()) -> dict:
    """Default profile + default assay of one feature table; the row of the results table.

    ``controls``: the control-naming options, for tables whose control labels are the plate's own
    (``--negcon negative_control --poscon positive_control``, as docs/your-own-plate.md).
    """
    from stratonet.core.tables import read_provenance

    prof = work / f"route_{name}.parquet"
    t0 = time.perf_counter()
    stratonet("profile", str(table), "-o", str(prof), *controls)
    stratonet("evaluate", "assay", str(prof), "-o", str(work / "route_run"), "--name", name, *controls)
    m = json.loads((work / "route_run" / "evaluate" / "assay" / name / "metrics.json").read_text())
    p = next(iter(m["plates"].values()))
    nested, ref = p["readouts"]["nested"], p["readouts"]["reference"]
    sel = read_provenance(prof)["profile"].get("selection", {})
    agree = (p.get("readout_agreement") or [{}])[0]
    dose = next(iter(p["dose"].values()), {})
    return {"feature_set": name, "n_features": m["n_features"], "nested_z": nested["z_prime"],
            "nested_ci": nested["z_prime_ci95"], "settings": nested["settings"]["label"],
            "reference_z": ref["z_prime"], "reference_ci": ref["z_prime_ci95"],
            "difference_ci": agree.get("difference_ci95"), "disagree": agree.get("disagree"),
            "removed": sel.get("removed"), "protected": len(sel.get("protected", [])),
            "selection_cost": sel.get("cost"), "cost_without_protection": sel.get("cost_without_protection"),
            "dose": dose.get("status"), "ec50": dose.get("ec50"), "spearman": dose.get("spearman_dose"),
            "seconds": round(time.perf_counter() - t0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--set", action="append", required=True, help="NAME=TABLE (relative to --work)")
    ap.add_argument("--negcon", help="Negative-control label, when the table's is not 'negcon'.")
    ap.add_argument("--poscon", help="Positive-control label, when the table's is not 'poscon'.")
    args = ap.parse_args()
    controls = tuple(x for flag, v in (("--negcon", args.negcon), ("--poscon", args.poscon)) if v for x in (flag, v))
    rows = []
    for item in args.set:
        name, _, rel = item.partition("=")
        rows.append(route(args.work, name, args.work / rel, controls))
        print(json.dumps(rows[-1]), flush=True)
    (args.work / "route_readouts.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
