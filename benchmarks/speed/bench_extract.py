"""Deep-extraction throughput on synthetic 1080x1080 16-bit 5-channel sites, in one run:

(a) I/O ceiling: decode + preprocess alone, through the same DataLoader as extraction;
(b) model only: the same Embedder on in-memory batches;
(c) end to end: ``extract_deep`` from index to Parquet (timed around the whole call, model build included);
(d) naive reference in the thesis's style: one image at a time, per-image skimage resize, no workers.

All figures are channel-images/s. Prints a table and writes JSON. Example::

    PYTHONPATH=src python benchmarks/speed/bench_extract.py --model stratonet50 --sites 16 --out /tmp/bench

``--roofline`` runs the precision study instead (issue 13): FLOPs per channel image of every registered model and
tap set, the large-GEMM peak in fp32, bf16 (and int8 through a quantised linear layer), model-only throughput per
precision and batch size (interleaved rounds, medians) as a fraction of that peak, end to end per precision and per
threads/workers setting, and a projection for one JUMP source::

    PYTHONPATH=src python benchmarks/speed/bench_extract.py --roofline --sites 24 --e2e-sites 128 --rounds 3 --out /tmp/bench

The end-to-end calls of ``--roofline`` run ``--e2e-sites`` sites each, so that the once-per-run costs (model build,
plate-scaling estimate, the last Parquet part: about 1 s) weigh on them as little as in a screen; the table gives
those costs and the site loop's own rate beside the whole-call rate.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
import torch
from torch.utils.data import DataLoader

CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]


def write_sites(folder: Path, n_sites: int, size: int = 1080, seed: int = 0) -> Path:
    """Synthetic uint16 sites (uncompressed TIFF, as Phenix writes them): noisy background plus nucleus-like blobs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:64, :64]
    blob = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / (2 * 8.0 ** 2))
    rows = []
    for s in range(n_sites):
        row = {"Metadata_Plate": "BENCH", "Metadata_Well": f"A{s // 9 + 1:02d}", "Metadata_Site": s % 9 + 1}
        for c, ch in enumerate(CHANNELS):
            p = folder / f"s{s:03d}_{ch}.tiff"
            if not p.exists():
                img = rng.normal(400 + 50 * c, 30, (size, size)).astype(np.float32)
                for cy, cx in rng.integers(0, size - 64, (60, 2)):
                    img[cy: cy + 64, cx: cx + 64] += rng.uniform(2000, 9000) * blob
                tifffile.imwrite(p, np.clip(img, 0, 65535).astype(np.uint16))
            row[f"Path_{ch}"] = str(p)
        rows.append(row)
    index = folder / "index.parquet"
    pd.DataFrame(rows).to_parquet(index)
    return index


def io_ceiling(index: Path, workers: int, batch_size: int, size: int, per_plane: bool = True,
               threads: int | None = None) -> float:
    """Decode + preprocess alone (per-image scaling): through ``workers`` DataLoader processes, or with
    ``threads`` the in-process :class:`ParallelDecode` that ``extract deep`` uses without workers."""
    from stratonet.extract.deep.dataset import ParallelDecode, Preprocess, SiteDataset, collate_sites
    from stratonet.runtime.deep_run import _worker_init

    rows = pd.read_parquet(index).to_dict("records")
    dataset = SiteDataset(rows, Preprocess(CHANNELS, input_size=size, per_plane=per_plane))
    spb = max(1, batch_size // len(CHANNELS))
    if threads:
        loader = ParallelDecode(dataset, spb, threads, ahead=False)
    else:
        loader = DataLoader(dataset, batch_size=spb, num_workers=workers, collate_fn=collate_sites,
                            worker_init_fn=_worker_init, prefetch_factor=4 if workers else None)
    t0 = time.perf_counter()
    n = 0
    for batch in loader:
        assert not batch["errors"], batch["errors"]
        n += batch["x"].shape[0] * batch["x"].shape[1]
    return n / (time.perf_counter() - t0)


def model_only(model_name: str, batch_size: int, size: int, n_images: int) -> float:
    from stratonet.extract.deep.inference import Embedder
    from stratonet.models import create_model

    emb = Embedder(create_model(model_name, seed=0), torch.device("cpu"), batch_size=batch_size,
                   mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    x = torch.rand(batch_size // len(CHANNELS), len(CHANNELS), size, size)
    emb(x[:1])  # warm-up
    t0 = time.perf_counter()
    done = 0
    while done < n_images:
        emb(x)
        done += x.shape[0] * x.shape[1]
    return done / (time.perf_counter() - t0)


def end_to_end(index: Path, out: Path, model_name: str, batch_size: int, workers: int | None,
               size: int = 224) -> tuple[float, dict]:
    from stratonet.runtime import extract_deep

    t0 = time.perf_counter()
    man = extract_deep(index, out, model=model_name, batch_size=batch_size, workers=workers, overwrite=True,
                       progress=False, input_size=size)  # the model-only figures are at this size too
    return man["channel_images"] / (time.perf_counter() - t0), man


def naive(index: Path, model_name: str, n_sites: int, size: int) -> float:
    """Thesis style: per image read, numpy percentile rescale, skimage resize, batch of one."""
    from stratonet.images.io import read_image
    from stratonet.models import create_model
    from stratonet.images.preprocess import rescale_percentile, resize

    model = create_model(model_name, seed=0)
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    rows = pd.read_parquet(index).to_dict("records")[:n_sites]
    t0 = time.perf_counter()
    n = 0
    with torch.no_grad():
        for row in rows:
            for ch in CHANNELS:
                img = resize(rescale_percentile(read_image(row[f"Path_{ch}"]).astype(np.float32)), size)
                x = torch.from_numpy(img)[None, None].repeat(1, 3, 1, 1)
                model.forward_taps((x - mean) / std)
                n += 1
    return n / (time.perf_counter() - t0)


JUMP_SOURCE_CHANNEL_IMAGES = 3.73e6
THESIS_HOURS = 117.8


def flop_table(size: int = 224) -> list[dict]:
    """FLOPs (torch's FlopCounterMode: 2 per multiply-add) per channel image for every registered model, default taps."""
    from torch.utils.flop_counter import FlopCounterMode

    from stratonet.models import create_model
    from stratonet.models.registry import list_models

    rows = []
    for name in list_models():
        net = create_model(name, seed=0)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            net.forward_taps(torch.zeros(1, net.in_chans, size, size))
        rows.append({"model": name, "taps": ",".join(net.tap_map.values()),
                     "gflop": counter.get_total_flops() / 1e9,
                     "params_m": sum(p.numel() for p in net.parameters()) / 1e6})
    return rows


def _median(xs: list[float]) -> float:
    return float(np.median(xs))


def gemm_kernels(n: int = 2048) -> dict:
    """Callables running an n x n x n matmul in fp32 and bf16 and an int8 quantised linear layer; their FLOPs."""
    a32, b32 = torch.rand(n, n), torch.rand(n, n)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    flops = 2 * n ** 3
    qlin = None
    try:
        from torch.ao.nn.quantized import Linear as QLinear

        torch.backends.quantized.engine = "x86"
        qlin = QLinear(n, n)
        qlin.set_weight_bias(torch.quantize_per_tensor(b32 - 0.5, 0.01, 0, torch.qint8), None)
        qx = torch.quantize_per_tensor(a32, 0.01, 0, torch.quint8)
    except Exception as exc:  # no quantised engine: report fp32/bf16 only
        print(f"int8 GEMM peak not measurable: {exc}")
    kernels = {"fp32": lambda: torch.mm(a32, b32), "bf16": lambda: torch.mm(a16, b16)}
    if qlin is not None:
        kernels["int8"] = lambda: qlin(qx)
    with torch.inference_mode():
        for fn in kernels.values():
            fn()  # warm-up
    return {"flops": flops, "kernels": kernels}


def model_only_study(model_name: str, precisions: list[str], batch_sizes: list[int], size: int, rounds: int,
                     calibration: torch.Tensor) -> tuple[dict, dict]:
    """Channel-images/s of the Embedder per (precision, batch size) and GEMM GFLOP/s per precision: one warm-up,
    then ``rounds`` rounds, each timing the GEMMs and one batch of every setting in turn (so that peak and model
    see the same contention); medians. Also the int8 quantisation time."""
    from stratonet.extract.deep.inference import Embedder
    from stratonet.models import create_model

    net = create_model(model_name, seed=0)
    norm = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    embedders, extra = {}, {}
    for prec in precisions:
        emb = Embedder(net, torch.device("cpu"), batch_size=max(batch_sizes), precision=prec, **norm)
        if prec == "int8":
            t0 = time.perf_counter()
            emb.calibrate(calibration)
            extra["int8_calibration_s"] = time.perf_counter() - t0
        for bs in batch_sizes:
            emb.batch_size = bs
            emb(torch.rand(1, bs, size, size))  # warm-up at the timed shape
        embedders[prec] = emb
    gemm = gemm_kernels()
    times: dict = {(p, bs): [] for p in precisions for bs in batch_sizes}
    gemm_times: dict = {k: [] for k in gemm["kernels"]}
    x = {bs: torch.rand(1, bs, size, size) for bs in batch_sizes}  # one site of bs channels = bs channel images
    for _ in range(rounds):
        with torch.inference_mode():
            for key, fn in gemm["kernels"].items():
                t0 = time.perf_counter()
                fn()
                gemm_times[key].append(gemm["flops"] / (time.perf_counter() - t0) / 1e9)
        for (prec, bs) in times:
            emb = embedders[prec]
            emb.batch_size = bs
            t0 = time.perf_counter()
            emb(x[bs])
            times[(prec, bs)].append(bs / (time.perf_counter() - t0))
    extra["gemm_gflops"] = {k: _median(v) for k, v in gemm_times.items()}
    return {f"{p}@{bs}": _median(v) for (p, bs), v in times.items()}, extra


def roofline(argv_args) -> dict:
    """The precision study (see the module docstring)."""
    from stratonet.runtime import extract_deep
    from stratonet.models.precision import cpu_flags, cpu_native_bf16, default_threads_workers

    args = argv_args
    cores = os.cpu_count() or 1
    res: dict = {"torch": torch.__version__, "cpu_count": cores, "native_bf16": cpu_native_bf16(cpu_flags()),
                 "load_avg_1m_start": os.getloadavg()[0], "model": args.model, "size": args.size}
    t_all = time.perf_counter()
    res["flops"] = flop_table(args.size) if not args.no_flops else []
    from torch.utils.flop_counter import FlopCounterMode

    from stratonet.models import create_model

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        create_model(args.model, seed=0).forward_taps(torch.zeros(1, 3, args.size, args.size))
    gflop = counter.get_total_flops() / 1e9
    index = write_sites(args.out / "sites", args.sites)
    from stratonet.extract.deep.dataset import Preprocess, SiteDataset

    rows = pd.read_parquet(index).to_dict("records")
    calib = torch.cat([SiteDataset(rows[:4], Preprocess(CHANNELS, input_size=args.size))[i]["x"].reshape(-1, 1, args.size, args.size)
                       for i in range(min(4, len(rows)))])
    precisions = args.precisions.split(",")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    res["model_only"], res["int8_quantise"] = model_only_study(args.model, precisions, batch_sizes, args.size,
                                                               args.rounds, calib)
    res["gemm_gflops"] = res["int8_quantise"].pop("gemm_gflops")
    res["roofline_images_per_s"] = {p: res["gemm_gflops"][p] / gflop for p in res["gemm_gflops"]}
    res["fraction_of_roofline"] = {k: v / res["roofline_images_per_s"][k.split("@")[0]]
                                   for k, v in res["model_only"].items() if k.split("@")[0] in res["gemm_gflops"]}
    # end to end: each precision at its defaults (batch, threads, workers, decode chosen by load), then bf16 variants:
    # (threads, workers, decode_thread, batch); None = the default
    threads0, workers0 = default_threads_workers("bf16", torch.device("cpu"))
    variants = [(p, None, None, None, None) for p in precisions if p != "int8"]  # int8 is not offered
    bf16_variants = [(cores, 0, False, None), (cores, 0, True, None)]  # decoding always in line; always ahead
    variants += [("bf16", *v) for v in bf16_variants if "bf16" in precisions]
    # a run of --e2e-sites: large enough that the once-per-run costs (model build, plate-scaling estimate, the
    # last Parquet part) weigh as little as they do in a screen; they are reported on their own
    e2e_sites = args.e2e_sites or args.sites
    e2e_index = index if e2e_sites == args.sites else write_sites(args.out / f"sites{e2e_sites}", e2e_sites)
    res["e2e_sites"] = e2e_sites
    e2e: dict = {}
    pipeline: dict = {}
    fixed: dict = {}
    adjacent: dict = {}  # whole-call rate / the model-only rate timed just before and after the call
    from stratonet.extract.deep.inference import Embedder
    from stratonet.models.precision import CPU_BATCH_SIZE

    probe_net = create_model(args.model, seed=0)
    probes = {p: Embedder(probe_net, torch.device("cpu"), batch_size=CPU_BATCH_SIZE, precision=p,
                          mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]) for p in precisions if p != "int8"}
    probe_x = torch.rand(1, CPU_BATCH_SIZE, args.size, args.size)

    def model_rate_now(prec: str, seconds: float = 1.5) -> float:
        torch.set_num_threads(threads0)
        probes[prec](probe_x)
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            probes[prec](probe_x)
            n += CPU_BATCH_SIZE
        return n / (time.perf_counter() - t0)

    for prec, threads, workers, dthread, bs in variants * args.e2e_rounds:
        key = (f"{prec} threads={threads or 'default'} workers={'default' if workers is None else workers} "
               f"decode_thread={'default' if dthread is None else dthread} batch={bs or 'default'}")
        before = model_rate_now(prec)
        t0 = time.perf_counter()
        man = extract_deep(e2e_index, args.out / "deep.parquet", model=args.model, batch_size=bs, precision=prec,
                           threads=threads, workers=workers, decode_thread=dthread, overwrite=True, progress=False,
                           input_size=args.size)
        call = time.perf_counter() - t0
        e2e.setdefault(key, []).append(man["channel_images"] / call)
        adjacent.setdefault(key, []).append(e2e[key][-1] / ((before + model_rate_now(prec)) / 2))
        pipeline.setdefault(key, []).append(man["channel_images_per_s"])  # the site loop, as the manifest times it
        fixed.setdefault(key, []).append(call - man["wall_s"])
        res.setdefault("end_to_end_settings", {})[key] = {k: man["config"][k] for k in
                                                          ("threads", "workers", "decode_thread", "batch_size")}
    torch.set_num_threads(threads0)
    res["end_to_end"] = {k: _median(v) for k, v in e2e.items()}
    res["end_to_end_pipeline"] = {k: _median(v) for k, v in pipeline.items()}
    res["end_to_end_fixed_s"] = {k: _median(v) for k, v in fixed.items()}
    res["end_to_end_over_adjacent_model"] = {k: _median(v) for k, v in adjacent.items()}
    res["end_to_end_over_adjacent_model_all"] = adjacent
    # I/O ceiling: decode + preprocess alone, the stacked (previous) and the plane-at-a-time path, interleaved
    io: dict = {}
    for _ in range(args.e2e_rounds):
        io.setdefault("0 worker(s), stacked", []).append(io_ceiling(index, 0, 16, args.size, per_plane=False))
        for w in (0, 1, 2):
            io.setdefault(f"{w} worker(s), per-plane", []).append(io_ceiling(index, w, 16, args.size))
        io.setdefault(f"decode threads {threads0}", []).append(io_ceiling(index, 0, 16, args.size, threads=threads0))
    res["io_ceiling"] = {k: _median(v) for k, v in io.items()}
    res["wall_s"] = time.perf_counter() - t_all
    res["load_avg_1m_end"] = os.getloadavg()[0]

    print(f"roofline study: {args.model} at {args.size}, {cores} cores, native bf16: {res['native_bf16']}, "
          f"torch {torch.__version__}; load average {res['load_avg_1m_start']:.1f} -> {res['load_avg_1m_end']:.1f}")
    print("\n| model | taps | GFLOP / channel image | params (M) |\n|---|---|---|---|")
    for r in res["flops"]:
        print(f"| {r['model']} | {r['taps']} | {r['gflop']:.2f} | {r['params_m']:.1f} |")
    print(f"\nGEMM 2048^3 peak (GFLOP/s, median of {args.rounds}, interleaved with the model-only rounds): " +
          ", ".join(f"{k} {v:.0f}" for k, v in res["gemm_gflops"].items()))
    print(f"\n| precision @ batch | model only (ch-img/s) | roofline (ch-img/s) | fraction |\n|---|---|---|---|")
    for k, v in res["model_only"].items():
        p = k.split("@")[0]
        roof = res["roofline_images_per_s"].get(p, float("nan"))
        print(f"| {k} | {v:.1f} | {roof:.1f} | {v / roof:.2f} |")
    print("\nint8 quantisation (calibration) time: " +
          ", ".join(f"{k} {v:.1f} s" for k, v in res["int8_quantise"].items()))
    print(f"I/O ceiling (decode + preprocess, median of {args.e2e_rounds}): " +
          ", ".join(f"{w} {v:.1f}" for w, v in res["io_ceiling"].items()))
    io_best = max(res["io_ceiling"].values())
    io_main = res["io_ceiling"].get(f"decode threads {threads0}", io_best)  # what extract deep runs
    res["cpu_shared_bound"] = {}
    print(f"\nend to end: {res['e2e_sites']} sites = {res['e2e_sites'] * len(CHANNELS)} channel images per call, "
          f"timed around the whole call; 'site loop' is the manifest's own rate, 'once per run' the rest")
    print(f"| end to end (median of {args.e2e_rounds}) | settings that ran | ch-img/s | / min(I/O, model-only@{CPU_BATCH_SIZE}) "
          f"| site loop ch-img/s | once per run (s) | / CPU-sharing bound | / adjacent model-only |\n|---|---|---|---|---|---|---|---|")
    for k, v in res["end_to_end"].items():
        model = res["model_only"].get(f"{k.split()[0]}@{CPU_BATCH_SIZE}", float("nan"))
        bound = min(io_best, model)
        ran = res["end_to_end_settings"][k]
        # decoding and the model share the same cores: one channel image costs the sum of both times
        shared = 1.0 / (1.0 / model + 1.0 / io_main)
        res["cpu_shared_bound"][k] = shared
        print(f"| {k} | {ran} | {v:.1f} | {v / bound:.2f} | {res['end_to_end_pipeline'][k]:.1f} "
              f"| {res['end_to_end_fixed_s'][k]:.2f} | {v / shared:.2f} "
              f"| {res['end_to_end_over_adjacent_model'][k]:.2f} |")
    print("CPU-sharing bound = 1 / (1 / model only + 1 / I/O ceiling of the decode threads): the rate if decoding "
          "and the model\ntook turns on the same cores with no other loss. Adjacent model-only: each call's rate over "
          f"the {CPU_BATCH_SIZE}-image model-only rate\ntimed for 1.5 s just before and just after it (median of the "
          "calls), which follows the machine's drift")
    best = max(res["end_to_end"].items(), key=lambda kv: kv[1])
    hours = JUMP_SOURCE_CHANNEL_IMAGES / (best[1] * 32 / cores) / 3600
    res["projection"] = {"setting": best[0], "hours_32_cores": hours}
    print(f"\nprojected: one JUMP source ({JUMP_SOURCE_CHANNEL_IMAGES / 1e6:.2f} M channel images) on 32 such cores "
          f"at {best[0]} ({best[1]:.1f} ch-img/s per {cores} cores, linear scaling assumed): {hours:.1f} h "
          f"(thesis: {THESIS_HOURS} h)")
    print(f"study wall time {res['wall_s']:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"bench_roofline_{args.model}.json").write_text(json.dumps(res, indent=2, default=str))
    return res


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--roofline", action="store_true", help="run the precision / roofline study instead")
    ap.add_argument("--precisions", default="fp32,bf16,int8", help="--roofline: precisions to compare")
    ap.add_argument("--batch-sizes", default="16,64", help="--roofline: model-only batch sizes")
    ap.add_argument("--rounds", type=int, default=3, help="--roofline: interleaved model-only rounds")
    ap.add_argument("--e2e-rounds", type=int, default=1, help="--roofline: interleaved end-to-end rounds")
    ap.add_argument("--no-flops", action="store_true", help="--roofline: skip the FLOP table of all models")
    ap.add_argument("--e2e-sites", type=int, default=None,
                    help="--roofline: sites per end-to-end call (default: --sites)")
    ap.add_argument("--model", default="stratonet50")
    ap.add_argument("--sites", type=int, default=16, help="sites for (a) and (c); 5 channel images each")
    ap.add_argument("--naive-sites", type=int, default=4, help="sites for (d)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None, help="default: the extractor's default")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--out", type=Path, default=Path("/tmp/stratonet-bench"))
    args = ap.parse_args(argv)
    if args.roofline:
        return roofline(args)

    from stratonet.extract.deep.inference import default_workers

    workers = default_workers(torch.device("cpu")) if args.workers is None else args.workers
    index = write_sites(args.out / "sites", args.sites)
    res = {"model": args.model, "sites": args.sites, "channels": len(CHANNELS), "batch_size": args.batch_size,
           "workers": workers, "threads": torch.get_num_threads(), "input_size": args.size,
           "cpu_count": os.cpu_count(), "torch": torch.__version__,
           "cpu": subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("\n")}
    res["a_io_ceiling"] = io_ceiling(index, workers, args.batch_size, args.size)
    res["b_model_only"] = model_only(args.model, args.batch_size, args.size, n_images=2 * args.batch_size)
    res["c_end_to_end"], man = end_to_end(index, args.out / "deep.parquet", args.model, args.batch_size, workers,
                                          args.size)
    res["c_loop_only"] = man["channel_images_per_s"]
    res["peak_rss_gb_tree"] = man["resources"]["rss_gb_max"]
    res["cpu_pct_avg_e2e"] = man["resources"]["cpu_pct_avg"]
    res["d_naive"] = naive(index, args.model, args.naive_sites, args.size)
    res["ratio_c_over_min_ab"] = res["c_end_to_end"] / min(res["a_io_ceiling"], res["b_model_only"])
    res["ratio_c_over_d"] = res["c_end_to_end"] / res["d_naive"]
    res["max_rss_gb_self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    res["load_avg_1m_end"] = os.getloadavg()[0]
    print(f"model {args.model}, {args.sites} sites x {len(CHANNELS)} channels, 1080x1080 uint16 -> {args.size}, "
          f"batch {args.batch_size}, workers {workers}, threads {res['threads']}")
    for k in ("a_io_ceiling", "b_model_only", "c_end_to_end", "c_loop_only", "d_naive"):
        print(f"  {k:<16} {res[k]:8.2f} channel-images/s")
    print(f"  c / min(a, b)    {res['ratio_c_over_min_ab']:.2f}\n  c / d            {res['ratio_c_over_d']:.2f}")
    print(f"  peak RSS (process tree) {res['peak_rss_gb_tree']:.2f} GB; load average at end {res['load_avg_1m_end']:.1f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"bench_extract_{args.model}.json").write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
