"""`stratonet extract classical`: segmentation + CellProfiler measurements."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available


@click.command("classical")
@click.argument("index", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("classical"), show_default=True,
              help="Output folder.")
def classical(index: Path, out: Path) -> None:
    """Segment nuclei and cells, measure them with cp_measure, and aggregate to sites and wells."""
    not_available("extract classical", "issue 4")
