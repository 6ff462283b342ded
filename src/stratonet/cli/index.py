"""`stratonet index`: build the per-site image index."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available


@click.command("index")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("index.parquet"), show_default=True,
              help="Index table to write.")
def index(source: Path, out: Path) -> None:
    """Index images: one row per site with Metadata_Plate/Well/Site and one Path_<Channel> column per channel."""
    not_available("index", "issue 2")
