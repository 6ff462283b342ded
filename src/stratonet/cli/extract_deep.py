"""`stratonet extract deep`: channel-specific deep features."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import on_error_option, start_run
from stratonet.cli.paths import PATH_OR_URL
from stratonet.cli.scaleout import run_scaled, scaleout_options, shared_plate_scaling
from stratonet.cli.scaling import scaling_options


def _split(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [v.strip() for v in str(value).replace("|", ",").split(",") if v.strip()]


@click.command("deep")
@click.argument("index", type=PATH_OR_URL)
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("deep.parquet"), show_default=True,
              help="Feature table to write (Parquet); a manifest <stem>.manifest.json is written beside it.")
@click.option("--channels", default=None, help="Comma-separated channels to use (default: all in the index).")
@click.option("--model", default=None,
              help="Registered model (taken from --weights if given; a model without bundled weights is untrained).")
@click.option("--weights", default="default", show_default=True,
              help="Checkpoint (<name>.safetensors + <name>.json) or weights name. default: the bundled ImageNet "
                   "efficientnet_lite0.in1k (the 'pretrained' extra); others after 'weights fetch' (see 'weights "
                   "list'); none: an untrained (seeded) StratoNet-50, or --model untrained, labelled as such.")
@click.option("--seed", type=int, default=0, show_default=True, help="Initialisation seed of an untrained network.")
@click.option("--taps", default=None,
              help="Comma-separated module names to tap (e.g. layer3.3.bn3,layer3.5); default: the model's taps.")
@click.option("--mode", type=click.Choice(["whole", "tiles", "cells"]), default="whole", show_default=True,
              help="whole: the field at its native size (or resized to --input-size); tiles: native-resolution "
                   "grid, averaged; "
                   "cells: crops around nuclei, kept per cell and averaged per site.")
@click.option("--input-size", type=click.IntRange(16), default=None,
              help="Network input side. Default: whole fields at their native size (no resampling; slower, "
                   "keeps subcellular detail), cells-mode crops at --crop-size, tiles at the checkpoint's "
                   "size (or 224).")
@click.option("--tile-size", type=int, default=None, help="tiles mode: tile side in pixels (default: input size).")
@click.option("--crop-size", type=int, default=96, show_default=True,
              help="cells mode: crop side in native pixels; crops enter the network at this size unless "
                   "--input-size is given.")
@click.option("--centers", type=click.Path(path_type=Path), default=None,
              help="cells mode: table of Nuclei_Location_Center_X/Y per Metadata_Plate/Well/Site (e.g. the classical "
                   "stage's per-cell table or CellProfiler Nuclei.csv); default: nuclei found on DNA (smoothing, "
                   "Otsu, size filter, declumping).")
@click.option("--max-cells", type=click.IntRange(1), default=None,
              help="cells mode: at most N nuclei per site, a sample seeded by --seed (recorded in the manifest); "
                   "default: all.")
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Channel images per forward pass (default: 16 on CPU, 64 on CUDA).")
@click.option("--workers", type=click.IntRange(0), default=None,
              help="Decode/preprocess worker processes (default on CPU: none below 8 cores, the main process decoding "
                   "in a background thread, then cores/8; on CUDA cores-1; 0 = none).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--compile/--no-compile", "compile_", default=False, show_default=True, help="torch.compile the model.")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="Model intra-op threads (default: the cores the worker processes leave).")
@click.option("--decode-thread/--decode-in-line", "decode_thread", default=None,
              help="With no worker processes: decode the next sites on threads while the model runs, or in line "
                   "between model batches. Default: in line while the machine is otherwise idle (faster on a "
                   "dedicated node), ahead while other processes keep cores busy (for a larger share of a shared "
                   "one), chosen again for every group of sites; always ahead on CUDA (benchmarks/RESULTS.md).")
@click.option("--no-illum", is_flag=True, default=False, help="Ignore Illum_<Channel> functions in the index.")
@scaling_options
@click.option("--center-object", is_flag=True, default=False,
              help="cells mode / single-cell stacks: keep only the cell at the crop centre (others set to 0).")
@click.option("--normalize", type=click.Choice(["imagenet", "none"]), default="imagenet", show_default=True)
@click.option("--fuse-bn/--no-fuse-bn", default=True, show_default=True,
              help="Fold BatchNorm into convolutions for inference (~1.2x faster on CPU; equal up to rounding).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="auto: bf16 on CUDA and on CPUs with native bf16 (avx512_bf16/AMX), else fp32.")
@click.option("--overwrite", is_flag=True, default=False, help="Discard existing output instead of resuming.")
@click.option("--flush-seconds", type=click.FloatRange(min=0), default=60, show_default=True,
              help="Write finished sites to disk at least this often (a kill loses at most this much work).")
@on_error_option
@scaleout_options
@click.option("--ray-mode", type=click.Choice(["data", "tasks"]), default="data", show_default=True,
              help="ray engine: data = Ray Data streaming (decode tasks, a model actor pool, one Parquet part per "
                   "unit of work); tasks = one Ray task per shard of wells running the local engine.")
@click.option("--ray-actors", type=click.IntRange(1), default=None,
              help="ray data: model actors (default: one per GPU, or one per node on CPU).")
@click.option("--ray-decode", type=click.Choice(["auto", "actor", "tasks"]), default="auto", show_default=True,
              help="ray data: where sites are decoded. actor = in the model actors, on their threads (auto on "
                   "CPU-only clusters); tasks = separate 1-CPU decode tasks feeding the actors (auto with GPUs).")
@click.option("--ray-unit-size", type=click.IntRange(1), default=None,
              help="ray data: sites per unit of work (one Parquet part; the retry and resume granularity), rounded "
                   "up to whole model batches [default: 2 units per actor decoding its own, 8 beside decode tasks; "
                   "at most 256 sites].")
def deep(index: Path, out: Path, precision: str, channels: str | None, model: str | None, weights: str,
         seed: int, taps: str | None, mode: str, input_size: int | None, tile_size: int | None, crop_size: int,
         centers: Path | None, max_cells: int | None, batch_size: int, workers: int | None, device: str, compile_: bool,
         threads: int | None, decode_thread: bool | None, no_illum: bool, scaling: str, scaling_file: Path | None,
         bit_depth: int | None,
         scaling_sites: int, center_object: bool, normalize: str, fuse_bn: bool, overwrite: bool,
         flush_seconds: float, on_error: str, engine: str, ray_address: str | None, ray_shards: int | None,
         shard: str | None, ray_mode: str, ray_actors: int | None, ray_decode: str,
         ray_unit_size: int | None) -> None:
    """Extract deep features channel by channel (StratoNet, ResNet, ECA-ResNet) at named taps.

    One row per site with all Metadata_* columns of INDEX and features <Channel>_<tap>_<iiii>. A rerun resumes.
    """
    from stratonet.core.progress import console
    from stratonet.core.tables import read_table
    from stratonet.core.wording import plural, row_unit
    from stratonet.extract.deep.config import DeepConfig
    from stratonet.runtime import extract_deep
    from stratonet.runtime.runfinish import require_parquet_output
    from stratonet.runtime.spec import RaySpec, RunSpec

    require_parquet_output(out, "deep features")  # before the run's lock makes a folder of a name without .parquet
    run_dir = out.parent if str(out.parent) else Path(".")
    local = engine == "local" and not shard
    # a local run writes its config once the resume check has passed, so a refused rerun leaves the old one
    cfg_file = run_dir / "extract_deep.config.yaml" if local else start_run(run_dir, name="extract_deep")
    table = read_table(index)  # read once, for every engine
    if scaling == "plate" and scaling_file is None and (engine != "local" or shard):
        # one set of plate percentiles for every shard, estimated on the whole index as a local run does
        scaling_file = shared_plate_scaling(table, out, _split(channels), scaling_sites, seed, not no_illum)
    cfg = DeepConfig.from_options(
        channels=_split(channels), model=model, weights=weights, seed=seed, taps=_split(taps), precision=precision,
        mode=mode, input_size=input_size, tile_size=tile_size, crop_size=crop_size, centers=centers,
        max_cells=max_cells, batch_size=batch_size, device=device, compile=compile_, on_error=on_error,
        illum=not no_illum, scaling=scaling, scaling_file=scaling_file, bit_depth=bit_depth,
        scaling_sites=scaling_sites, center_object=center_object, normalize=normalize, fuse_bn=fuse_bn)
    spec = RunSpec(workers=workers, threads=threads, decode_thread=decode_thread, flush_seconds=flush_seconds,
                   overwrite=overwrite, progress=engine == "local", engine=engine, shard=shard,
                   ray=RaySpec(address=ray_address, shards=ray_shards, mode=ray_mode, actors=ray_actors,
                               decode=ray_decode, unit_size=ray_unit_size))

    def run(idx, dest):
        return extract_deep(idx, dest, cfg, spec, source=str(index) if idx is table else None,
                            on_start=(lambda: start_run(run_dir, name="extract_deep")) if local else None)

    if engine == "ray" and ray_mode == "data" and shard is None:
        from stratonet.core.errors import ConfigError
        from stratonet.runtime.raydata import extract_deep_ray

        if ray_shards is not None:
            raise ConfigError("--ray-shards applies to --ray-mode tasks; Ray Data sizes its own units of work")
        if max_cells is not None:  # never dropped silently
            raise ConfigError("--max-cells is not supported by --ray-mode data yet; use --ray-mode tasks or the "
                              "local engine")
        manifest = extract_deep_ray(table, out, cfg, spec)
        e = manifest["engine"]
        how = (f"ray data ({plural(e['actors'], 'model actor')}, {plural(e['units'], 'unit')} of "
               f"{plural(e['sites_per_unit'], 'site')})")
    else:
        manifest, how = run_scaled(run, table, out, engine, shard, ray_address, ray_shards)
    unit = row_unit(table.columns)  # "crop" for array-stack indexes, else "site"
    console.print(
        f"{plural(manifest['sites_processed'], unit)} extracted ({manifest['sites_resumed']} resumed, "
        f"{plural(manifest['errors'], 'error')}), {manifest['channel_images_per_s']:.1f} channel-images/s, "
        f"{manifest['precision']['precision']}, weights: {manifest['provenance']['weights']} -> {out}  "
        f"(config {cfg_file.name})", highlight=False
    )
    if manifest.get("crops_per_s") is not None:
        console.print(f"cells: {manifest['crops']} crops ({manifest['cells_per_site_mean']:.0f} per site), "
                      f"{manifest['crops_per_s']:.1f} crops/s", highlight=False)
    if how != "local":
        console.print(f"engine: {how}" + ("; join the shards with 'stratonet merge OUT' when all are done"
                                           if how.startswith("shard") else ""), highlight=False)
