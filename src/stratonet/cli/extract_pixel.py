"""`stratonet extract pixel`: the flattened-pixel baseline."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import on_error_option, start_run


@click.command("pixel")
@click.argument("index", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("pixel.parquet"), show_default=True,
              help="Feature table to write (Parquet); a rerun resumes.")
@click.option("--size", type=click.IntRange(1, 512), default=16, show_default=True,
              help="Each channel is resized to size x size pixels.")
@click.option("--channels", default=None, help="Comma-separated channels, e.g. DNA,AGP [default: all in the index].")
@click.option("--illum/--no-illum", default=True, show_default=True,
              help="Divide by the index's Illum_<Channel> functions when present.")
@click.option("--overwrite", is_flag=True, default=False,
              help="Discard existing output instead of resuming (a resume with other settings is refused).")
@on_error_option
def pixel(index: Path, out: Path, size: int, channels: str | None, illum: bool, overwrite: bool,
          on_error: str) -> None:
    """Flattened, downsampled per-channel pixels as a baseline feature set.

    Per site and channel: percentile rescale (0.1-99.9) to [0, 1], anti-aliased resize to SIZE x SIZE, flatten
    into features <Channel>_px_<iiii>. Writes OUT, OUT.manifest.json and, with --on-error skip, an errors table.
    """
    from stratonet.extract.pixel import extract_pixel
    from stratonet.progress import console

    start_run(out.parent, "extract_pixel")
    chans = [c.strip() for c in channels.split(",") if c.strip()] if channels else None
    path = extract_pixel(index, out, size=size, channels=chans, illum=illum, on_error=on_error, overwrite=overwrite)
    console.print(f"pixel features -> {path} (manifest {path.name}.manifest.json)", highlight=False)
