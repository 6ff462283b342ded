"""`stratonet report`: one self-contained HTML report plus metrics.json."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("report.html"), show_default=True,
              help="HTML file to write.")
def report(run_dir: Path, out: Path) -> None:
    """Write one self-contained HTML report with embedded figures, metrics.json and CSV tables."""
    not_available("report", "issue 5")
