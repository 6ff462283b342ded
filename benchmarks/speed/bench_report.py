"""Report size and build time for a synthetic plate (default: 384 wells x 2 sites).

Builds a run folder once (synthetic plate with masks, site features with cell counts, well profiles,
classifier predictions, retrieval; see tests/plate_run.py), then times ``build_report`` on it and reports the
HTML size, the plate viewer's share of it and the thumbnail edge used.

Usage::

    PYTHONPATH=src python benchmarks/speed/bench_report.py --wells 384 --sites 2 --size 256 --out /tmp/bench_report
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wells", type=int, default=384)
    ap.add_argument("--sites", type=int, default=2)
    ap.add_argument("--size", type=int, default=256, help="synthetic image edge in px")
    ap.add_argument("--thumb", type=int, default=None, help="viewer thumbnail edge (default: the report's choice)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_report"))
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()

    from plate_run import build_plate_run
    from stratonet.report import build_report

    run = args.out / "run"
    if not (run / "profiles" / "classical.parquet").exists():
        t0 = time.perf_counter()
        build_plate_run(args.out, wells=args.wells, sites=args.sites, size=args.size, workers=2)
        print(f"run folder built in {time.perf_counter() - t0:.1f} s (not part of the figure)")
    times, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        path = build_report(run, thumb_px=args.thumb)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    html = path.read_text()
    viewer = re.search(r'id="viewer-data">(.*?)</script>', html, re.S)
    metrics = json.loads((path.parent / "metrics.json").read_text())
    plate = next(v for k, v in metrics["plates"].items() if k != "notes")
    print(json.dumps({
        "wells": args.wells, "sites_per_well": args.sites, "image_px": args.size,
        "thumbnail_px": plate["thumbnail_px"], "sites": plate["sites"],
        "build_s": [round(t, 1) for t in times], "build_cpu_s": [round(t, 1) for t in cpu],
        "report_mb": round(path.stat().st_size / 1e6, 2),
        "viewer_data_mb": round(len(viewer.group(1)) / 1e6, 2) if viewer else 0.0,
    }, indent=1))


if __name__ == "__main__":
    main()
