"""Site read throughput: OME-Zarr (local, and over a local HTTP server) against TIFF, as ratios in one run.

A synthetic plate (``stratonet synth``, 16-bit, 5 channels) is indexed from its TIFFs, exported to OME-Zarr
(``stratonet export``, once per chunk compression: Blosc-zstd, the export default; plain zstd, ome-zarr's default;
none) and indexed again. Each route reads every site with :func:`stratonet.images.io.load_index_row`
(the function every extractor uses; raw values, no illumination). The routes take turns site by site (the order
rotating), so a change in machine load hits all of them alike, and the comparison is paired: for each site read,
the TIFF time over the route's time; the median of these is the speed ratio. Sites/s of the median and the best
round are given beside it. The HTTP server is Python's ``http.server`` in a thread
of this process on 127.0.0.1, serving both the TIFFs and the OME-Zarr plate, so the HTTP figures measure
per-request overhead, not a network.

Example::

    PYTHONPATH=src python benchmarks/speed/omezarr_read.py --wells 8 --sites 2 --size 1080 --rounds 3 --out /tmp/ozb
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import statistics
import threading
import time
from pathlib import Path

import pandas as pd


COMPRESSIONS = ("blosc-zstd", "zstd", "none")  # export's default first


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{srv.server_address[1]}", srv


def build(out: Path, wells: int, sites: int, size: int) -> dict[str, pd.DataFrame]:
    """The plate, its TIFF and OME-Zarr indexes, and the same two with every path under the HTTP server."""
    from stratonet.cli import main

    def cli(*argv):
        try:
            main([str(a) for a in argv])
        except SystemExit as exc:
            if exc.code:
                raise

    if not (out / "plate" / "load_data.csv").exists():
        cli("synth", out / "plate", "--wells", wells, "--sites", sites, "--size", size)
    cli("index", out / "plate" / "load_data.csv", "-o", out / "tiff.parquet")
    found = {"tiff": pd.read_parquet(out / "tiff.parquet")}
    for comp in COMPRESSIONS:
        plate = out / f"plate-{comp}.zarr"
        if not plate.exists():
            cli("export", out / "plate", "-o", plate, "--compression", comp)
        cli("index", plate, "-o", out / f"zarr-{comp}.parquet")
        found[comp] = pd.read_parquet(out / f"zarr-{comp}.parquet")
    return found


def as_http(index: pd.DataFrame, root: Path, base: str) -> pd.DataFrame:
    """The index with every local path under ``root`` rewritten to the HTTP server's URL."""
    out = index.copy()
    for col in [c for c in out.columns if c.startswith("Path_")]:
        out[col] = [base + "/" + Path(p.split("#")[0]).relative_to(root).as_posix()
                    + (("#" + p.split("#", 1)[1]) if "#" in p else "") for p in out[col]]
    return out


def read_site(row, channels: list[str]) -> float:
    """Seconds to read one site (one thread, as one decode worker does)."""
    from stratonet.images.io import load_index_row

    t0 = time.perf_counter()
    load_index_row(row, channels, illum=False)
    return time.perf_counter() - t0


def paired_times(routes: dict[str, pd.DataFrame], channels: list[str], rounds: int) -> dict[str, list[list[float]]]:
    """Per route, per round, per site: read seconds. Routes take turns site by site (the order rotating), so a
    change in machine load hits every route alike; the comparison is paired by site."""
    names = list(routes)
    rows = {k: [r for _, r in df.iterrows()] for k, df in routes.items()}
    n = len(next(iter(rows.values())))
    secs = {k: [[0.0] * n for _ in range(rounds)] for k in names}
    for rnd in range(rounds):
        for i in range(n):
            shift = (rnd * n + i) % len(names)
            for k in names[shift:] + names[:shift]:
                secs[k][rnd][i] = read_site(rows[k][i], channels)
    return secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wells", type=int, default=8)
    ap.add_argument("--sites", type=int, default=2)
    ap.add_argument("--size", type=int, default=1080)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("/tmp/omezarr_read"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    idx = build(args.out, args.wells, args.sites, args.size)
    base, srv = serve(args.out)
    routes = {"tiff local": idx["tiff"]}
    routes.update({f"omezarr {c} local": idx[c] for c in COMPRESSIONS})
    routes["tiff http"] = as_http(idx["tiff"], args.out, base)
    routes["omezarr blosc-zstd http"] = as_http(idx["blosc-zstd"], args.out, base)
    channels = ["DNA", "ER", "RNA", "AGP", "Mito"]
    load_before = os.getloadavg()
    for df in routes.values():  # warm-up: page cache, imports, first HTTP connections
        for _, row in df.head(2).iterrows():
            read_site(row, channels)
    secs = paired_times(routes, channels, args.rounds)
    srv.shutdown()
    n = len(idx["tiff"])
    per_round = {k: [sum(r) for r in v] for k, v in secs.items()}
    rate = {k: n / statistics.median(v) for k, v in per_round.items()}
    best = {k: n / min(v) for k, v in per_round.items()}  # the least-disturbed round
    paired = {k: statistics.median(t / s for tr, sr in zip(secs["tiff local"], v) for t, s in zip(tr, sr))
              for k, v in secs.items()}  # median over site reads of (tiff local time / route time)
    result = {"sites": n, "channels": len(channels), "size": args.size, "rounds": args.rounds,
              "sites_per_s": rate, "sites_per_s_best_round": best,
              "paired_speed_vs_tiff_local": paired,
              "paired_omezarr_http_vs_tiff_http": statistics.median(
                  t / s for tr, sr in zip(secs["tiff http"], secs["omezarr blosc-zstd http"]) for t, s in zip(tr, sr)),
              "round_seconds": per_round, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "bytes_tiff": sum(f.stat().st_size for f in (args.out / "plate").rglob("*.tif*")),
              "bytes_omezarr": {c: sum(f.stat().st_size for f in (args.out / f"plate-{c}.zarr").rglob("*")
                                       if f.is_file()) for c in COMPRESSIONS}}
    (args.out / "omezarr_read.json").write_text(json.dumps(result, indent=2))
    print(f"{n} sites x {len(channels)} channels, {args.size} px, {args.rounds} rounds, routes taking turns site by "
          "site")
    print(f"  {'route':24s} {'median round':>14s} {'best round':>12s}  speed vs tiff local (paired median)")
    for k in routes:
        print(f"  {k:24s} {rate[k]:8.2f} site/s {best[k]:7.2f} site/s  x{paired[k]:.2f}")
    print(f"  omezarr blosc-zstd http vs tiff http (paired median): x{result['paired_omezarr_http_vs_tiff_http']:.2f}")
    print(f"  bytes: tiff {result['bytes_tiff']}, omezarr {result['bytes_omezarr']}")
    print(f"  load average before {tuple(round(x, 2) for x in load_before)}, "
          f"after {tuple(round(x, 2) for x in result['loadavg_after'])}")


if __name__ == "__main__":
    main()
