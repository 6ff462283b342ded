"""`stratonet profile`: aggregate, annotate, normalise, select features, spherize."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available


@click.command("profile")
@click.argument("features", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("profiles.parquet"), show_default=True,
              help="Profile table to write.")
def profile(features: Path, out: Path) -> None:
    """Turn a feature table into normalised, feature-selected profiles."""
    not_available("profile", "issue 5")
