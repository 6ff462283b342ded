"""Shared CLI pieces: option types, the on-error policy, and run bookkeeping."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.core.config import write_run_config
from stratonet.core.progress import log_to_file


def on_error_option(f):
    """``--on-error fail|skip`` for commands that loop over sites."""
    return click.option(
        "--on-error", type=click.Choice(["fail", "skip"]), default="fail", show_default=True, help=ON_ERROR_HELP
    )(f)


ON_ERROR_HELP = "fail: stop at the first bad site with a one-line error; skip: record failed sites in an errors table and go on."


def start_run(out_dir: str | Path, name: str | None = None) -> Path:
    """Write the resolved configuration of the current command into ``out_dir`` and log there.

    Returns the config file's path.
    """
    ctx = click.get_current_context()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = write_run_config(ctx, out, name)
    log_to_file(out / "stratonet.log")
    return cfg


def not_available(what: str, issue: str) -> None:
    """Raise the standard 'not yet available' error for a command of a later issue."""
    from stratonet.core.errors import NotAvailableError

    raise NotAvailableError(f"'{what}' is not yet available in this version ({issue})")

