"""`stratonet synth`: synthetic Cell Painting plates with known phenotypes."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available


@click.command("synth")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--wells", type=int, default=96, show_default=True, help="Number of wells.")
@click.option("--sites", type=int, default=4, show_default=True, help="Sites (fields) per well.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; same seed, same plate.")
def synth(out: Path, wells: int, sites: int, seed: int) -> None:
    """Write a synthetic 5-channel Cell Painting plate (phenix layout, 16-bit TIFF), load_data.csv and platemap."""
    not_available("synth", "issue 2")
