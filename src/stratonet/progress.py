"""Progress bars (rich) and run logs written to a file next to the output."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)

T = TypeVar("T")
console = Console(stderr=True)
LOGGER_NAME = "stratonet"
# Without a handler, Python's last-resort handler would echo every log record to stderr a second time.
logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())


def get_logger() -> logging.Logger:
    """The package logger."""
    return logging.getLogger(LOGGER_NAME)


def log_to_file(path: str | Path) -> Path:
    """Also log (INFO and up) to ``path``; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    logger = get_logger()
    logger.setLevel(logging.INFO)
    for h in list(logger.handlers):
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == p.resolve():
            return p
    fh = _RunLogHandler(p)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(fh)
    return p


class _RunLogHandler(logging.FileHandler):
    """A run-log file handler that, when the log cannot be written (full disk), says so once and stops,
    instead of printing logging's traceback for every record."""

    broken = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.broken:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        import sys as _sys

        self.broken = True
        exc = _sys.exc_info()[1]
        console.print(f"[yellow]warning:[/] cannot write the run log {self.baseFilename} ({exc}); it stops here",
                      highlight=False, soft_wrap=True)


def track(iterable: Iterable[T], description: str, total: int | None = None, disable: bool | None = None) -> Iterator[T]:
    """Iterate with a rich progress bar on stderr (hidden when stderr is not a terminal and not forced)."""
    if disable is None:
        disable = False
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=disable,
        transient=not sys.stderr.isatty(),
    )
    with progress:
        task = progress.add_task(description, total=total)
        for item in iterable:
            yield item
            progress.advance(task)


def warn(message: str) -> None:
    """Say something the user must know (a column left out, a value assumed) on stderr and in the run log."""
    get_logger().warning(message)
    console.print(f"[yellow]warning:[/] {message}", highlight=False, markup=True, soft_wrap=True)
