"""The ``stratonet`` command line (click).

Each subcommand lives in its own module; this file only assembles them and turns errors into one-line messages.
Options may come from a YAML file given with ``stratonet --config FILE ...`` (see :mod:`stratonet.core.config`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from stratonet import __version__
from stratonet.cli.demo import demo
from stratonet.cli.evaluate import evaluate
from stratonet.cli.export import export
from stratonet.cli.extract_classical import classical
from stratonet.cli.extract_deep import deep
from stratonet.cli.extract_pixel import pixel
from stratonet.cli.index import index
from stratonet.cli.profile import profile
from stratonet.cli.report import report
from stratonet.cli.scaleout import merge
from stratonet.cli.synth import synth
from stratonet.cli.train import train
from stratonet.cli.view import view
from stratonet.cli.weights import weights
from stratonet.core.errors import StratoNetError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="stratonet")
@click.option(
    "--config", "-c", type=click.Path(path_type=Path), default=None,
    help="YAML file of options keyed by command, e.g. 'extract: {deep: {batch_size: 64}}'.",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """StratoNet: image-based profiling of high-content screens.

    index -> extract (deep, classical, pixel) -> profile -> evaluate -> report, plus synth, train and demo.
    """
    if config is not None:
        from stratonet.core.config import load_yaml, to_default_map

        ctx.default_map = to_default_map(ctx.command, load_yaml(config), str(config))


@cli.group("extract")
def extract() -> None:
    """Extract features from an index: deep, classical or pixel."""


extract.add_command(deep)
extract.add_command(classical)
extract.add_command(pixel)
for _cmd in (synth, index, profile, evaluate, report, view, train, weights, demo, merge, export):
    cli.add_command(_cmd)


def _error(msg: str) -> None:
    from stratonet.core.progress import console, get_logger

    from rich.markup import escape

    get_logger().error(msg)
    # one line in a log or pipe; on a terminal rich wraps at word boundaries (the terminal would cut mid-word);
    # the message is escaped so that text such as "pip install 'stratonet[czi]'" is printed, not read as markup
    console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, markup=True, soft_wrap=not console.is_terminal)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, printing bad-input errors as one line with a non-zero exit.

    Library warnings go to the run's log file (see :class:`stratonet.core.progress.WarningRouter`), counted in one
    closing line.
    """
    from stratonet.core.progress import WarningRouter

    router = WarningRouter()
    try:
        with router:
            rv = _run(argv)
    finally:
        if router.summary():
            from stratonet.core.progress import console

            console.print(f"[dim]{router.summary()}[/]", highlight=False)
    if isinstance(rv, int) and rv:
        sys.exit(rv)


def _interrupt_code() -> int:
    """130 after Ctrl-C, 143 after SIGTERM (128 + the signal's number, the shell convention)."""
    from stratonet.runtime.runguard import interrupt_exit_code, interrupted

    return interrupt_exit_code() if interrupted() else 130


def _run(argv: list[str] | None):
    try:
        rv = cli.main(args=argv, prog_name="stratonet", standalone_mode=False)
    except click.exceptions.Abort as exc:
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)  # click turns Ctrl-C (and SIGTERM) into Abort
        _error("interrupted; what was written is kept and a rerun resumes" if interrupted else "aborted")
        sys.exit(_interrupt_code())
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except StratoNetError as exc:
        _error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        sys.exit(exc.exit_code)
    except OSError as exc:  # full disk, read-only output, permissions: the user's to fix, not a bug
        from stratonet.core.errors import storage_reason

        reason = storage_reason(exc)
        if reason is None:
            _internal_error(exc)
        where = exc.filename or "writing output"
        _error(f"{where}: {reason}")
        sys.exit(2)
    except KeyboardInterrupt:
        _error("interrupted; what was written is kept and a rerun resumes")
        sys.exit(_interrupt_code())
    except Exception as exc:  # a bug, not bad input: one line, traceback on request
        _internal_error(exc)
    return rv


def _internal_error(exc: BaseException) -> None:
    if os.environ.get("STRATONET_DEBUG"):
        raise exc
    _error(f"internal error: {type(exc).__name__}: {exc} (set STRATONET_DEBUG=1 for the traceback)")
    sys.exit(1)
