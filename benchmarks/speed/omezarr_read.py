"""Site read throughput: OME-Zarr (local, and over a local HTTP server) against TIFF, as ratios in one run.

A synthetic plate (``stratonet synth``, 16-bit, 5 channels) is indexed from its TIFFs, exported to OME-Zarr
(``stratonet export``, once per chunk compression: Blosc-zstd, the export default; plain zstd, ome-zarr's default;
none) and indexed again. Each route reads every site with :func:`stratonet.io.load_index_row`
(the function every extractor uses; raw values, no illumination), in rounds that alternate the routes so that a
change in machine load hits all of them alike. The median of the rounds is reported, as sites/s and as a ratio to
the local TIFF route. The HTTP server is Python's ``http.server`` in a thread of this process on 127.0.0.1, serving
both the TIFFs and the OME-Zarr plate, so the HTTP figures measure per-request overhead, not a network.

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


def read_all(index: pd.DataFrame, channels: list[str]) -> float:
    """Seconds to read every site of ``index`` (one thread, as one decode worker does)."""
    from stratonet.io import load_index_row

    t0 = time.perf_counter()
    for _, row in index.iterrows():
        load_index_row(row, channels, illum=False)
    return time.perf_counter() - t0


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
        read_all(df.head(2), channels)
    secs: dict[str, list[float]] = {k: [] for k in routes}
    for _ in range(args.rounds):
        for name, df in routes.items():
            secs[name].append(read_all(df, channels))
    srv.shutdown()
    n = len(idx["tiff"])
    rate = {k: n / statistics.median(v) for k, v in secs.items()}
    result = {"sites": n, "channels": len(channels), "size": args.size, "rounds": args.rounds,
              "sites_per_s": rate, "ratio_to_tiff_local": {k: v / rate["tiff local"] for k, v in rate.items()},
              "omezarr_http_over_tiff_http": rate["omezarr blosc-zstd http"] / rate["tiff http"],
              "seconds": secs, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "bytes_tiff": sum(f.stat().st_size for f in (args.out / "plate").rglob("*.tif*")),
              "bytes_omezarr": {c: sum(f.stat().st_size for f in (args.out / f"plate-{c}.zarr").rglob("*")
                                       if f.is_file()) for c in COMPRESSIONS}}
    (args.out / "omezarr_read.json").write_text(json.dumps(result, indent=2))
    print(f"{n} sites x {len(channels)} channels, {args.size} px, median of {args.rounds} rounds")
    for k in routes:
        print(f"  {k:24s} {rate[k]:7.2f} sites/s   x{result['ratio_to_tiff_local'][k]:.2f} of tiff local")
    print(f"  omezarr blosc-zstd http / tiff http: x{result['omezarr_http_over_tiff_http']:.2f}")
    print(f"  bytes: tiff {result['bytes_tiff']}, omezarr {result['bytes_omezarr']}")
    print(f"  load average before {load_before}, after {result['loadavg_after']}")


if __name__ == "__main__":
    main()
