"""`stratonet extract pixel`: the flattened-pixel baseline."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available


@click.command("pixel")
@click.argument("index", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("pixel.parquet"), show_default=True,
              help="Feature table to write.")
def pixel(index: Path, out: Path) -> None:
    """Flattened, downsampled per-channel pixels as a baseline feature set."""
    not_available("extract pixel", "issue 2")
