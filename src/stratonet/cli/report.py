"""`stratonet report`: one self-contained HTML report plus metrics.json."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import start_run
from stratonet.cli.controls import control_names, control_options


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="HTML file to write [default: RUN_DIR/report/report.html].")
@click.option("--title", default=None, help="Page title [default: 'StratoNet report: <run folder name>'].")
@control_options
def report(run_dir: Path, out: Path | None, title: str | None, control_column: str, negcon: str | None,
           poscon: str | None, controls_file: Path | None) -> None:
    """Write one self-contained HTML report with embedded figures, metrics.json and CSV tables."""
    from stratonet.core.errors import InputFileError
    from stratonet.core.progress import console
    from stratonet.report import build_report

    if not run_dir.is_dir():
        raise InputFileError(str(run_dir), "run folder not found")
    out = out or run_dir / "report" / "report.html"
    start_run(out.parent, "report")
    path = build_report(run_dir, out, title=title,
                        controls=control_names(control_column, negcon, poscon, controls_file))
    import json

    for note in json.loads((path.parent / "metrics.json").read_text()).get("plates", {}).get("notes", []):
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)  # degenerate wells, failed sites
    console.print(f"report written to {path.resolve()}")
