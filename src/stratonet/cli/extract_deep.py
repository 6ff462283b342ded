"""`stratonet extract deep`: channel-specific deep features."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available


@click.command("deep")
@click.argument("index", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("deep.parquet"), show_default=True,
              help="Feature table to write.")
def deep(index: Path, out: Path) -> None:
    """Extract deep features channel by channel (StratoNet, ResNet, ECA-ResNet) at named taps."""
    not_available("extract deep", "issue 3")
