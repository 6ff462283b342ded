"""`stratonet extract pixel`: the flattened-pixel baseline."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import on_error_option, start_run
from stratonet.cli.paths import PATH_OR_URL
from stratonet.cli.scaleout import run_scaled, scaleout_options, shared_plate_scaling
from stratonet.cli.scaling import scaling_options


@click.command("pixel")
@click.argument("index", type=PATH_OR_URL)
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("pixel.parquet"), show_default=True,
              help="Feature table to write (Parquet); a rerun resumes.")
@click.option("--size", type=click.IntRange(1, 512), default=16, show_default=True,
              help="Each channel is resized to size x size pixels.")
@click.option("--channels", default=None, help="Comma-separated channels, e.g. DNA,AGP [default: all in the index].")
@click.option("--illum/--no-illum", default=True, show_default=True,
              help="Divide by the index's Illum_<Channel> functions when present.")
@click.option("--overwrite", is_flag=True, default=False,
              help="Discard existing output instead of resuming (a resume with other settings is refused).")
@scaling_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the plate-scaling site sample.")
@on_error_option
@scaleout_options
def pixel(index: Path, out: Path, size: int, channels: str | None, illum: bool, overwrite: bool, scaling: str,
          scaling_file: Path | None, bit_depth: int | None, scaling_sites: int, seed: int, on_error: str,
          engine: str, ray_address: str | None, ray_shards: int | None, shard: str | None) -> None:
    """Flattened, downsampled per-channel pixels as a baseline feature set.

    Per site and channel: rescale to [0, 1] (--scaling), anti-aliased resize to SIZE x SIZE, flatten
    into features <Channel>_px_<iiii>. Writes OUT, <stem>.manifest.json beside it and, with --on-error skip, an
    errors table.
    """
    from stratonet.core.progress import console
    from stratonet.extract.pixel import PixelConfig
    from stratonet.runtime import extract_pixel
    from stratonet.runtime.spec import RaySpec, RunSpec

    local = engine == "local" and not shard
    if not local:
        start_run(out.parent, "extract_pixel")
    chans = [c.strip() for c in channels.split(",") if c.strip()] if channels else None
    if scaling == "plate" and scaling_file is None and (engine != "local" or shard):
        from stratonet.core.tables import read_table

        index = read_table(index)  # one set of plate percentiles for every shard, from the whole index
        scaling_file = shared_plate_scaling(index, out, chans, scaling_sites, seed, illum)

    cfg = PixelConfig.from_options(size=size, channels=chans, illum=illum, on_error=on_error, scaling=scaling,
                                   scaling_file=scaling_file, bit_depth=bit_depth, scaling_sites=scaling_sites,
                                   seed=seed)
    spec = RunSpec(overwrite=overwrite, engine=engine, shard=shard,
                   ray=RaySpec(address=ray_address, shards=ray_shards, mode="tasks"))

    def run(idx, dest):
        path = extract_pixel(idx, dest, cfg, spec,
                             # a local run writes its config once the resume check has passed (a refused rerun
                             # leaves the existing run's extract_pixel.config.yaml as it was)
                             on_start=(lambda: start_run(out.parent, "extract_pixel")) if local else None)
        return {"output": str(path)}

    _, how = run_scaled(run, index, out, engine, shard, ray_address, ray_shards)
    man_path = out.with_name(out.name.removesuffix('.parquet') + ".manifest.json")
    counts = ""
    if how == "local" and man_path.exists():
        import json

        from stratonet.core.wording import plural

        man = json.loads(man_path.read_text())
        resumed = man.get("n_sites_skipped_as_done", 0)
        counts = (f"{plural(man['n_sites'] + resumed, 'site')} ({man['n_sites']} this run, {resumed} resumed), "
                  if resumed else f"{plural(man['n_sites'], 'site')}, ") + f"{plural(man['errors'], 'error')} "
    console.print(f"pixel features: {counts}-> {out} (manifest {man_path.name}"
                  f"{'' if how == 'local' else '; engine: ' + how})", highlight=False)
