"""Progress bars (rich) and run logs written to a file next to the output."""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)

T = TypeVar("T")


class _Console(Console):
    """rich's Console whose messages wrap at word boundaries only.

    rich folds a word longer than the line (a path) mid-word. Here a message (one string) is divided at spaces
    only and printed with soft wrapping, so a long path moves to a line of its own and stays whole when copied.
    """

    def print(self, *objects, **kwargs) -> None:  # noqa: D102
        if len(objects) == 1 and isinstance(objects[0], str) and not kwargs.get("soft_wrap"):
            from rich._wrap import divide_line
            from rich.text import Text

            text = self.render_str(objects[0], markup=kwargs.pop("markup", None),
                                   highlight=kwargs.pop("highlight", None), emoji=kwargs.pop("emoji", None))
            lines = []
            for line in text.split("\n", allow_blank=True):
                for piece in line.divide(divide_line(str(line), max(self.width, 20), fold=False)):
                    piece.rstrip()
                    lines.append(piece)
            objects = (Text("\n").join(lines),)
            kwargs["soft_wrap"] = True
        super().print(*objects, **kwargs)


console = _Console(stderr=True)
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


def _bar(disable: bool | None) -> Progress:
    """The project's progress bar on stderr: description, bar, done/total, elapsed and remaining time (left on the
    screen at a terminal, removed when stderr is a file)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=bool(disable),
        transient=not sys.stderr.isatty(),
    )


def track(iterable: Iterable[T], description: str, total: int | None = None, disable: bool | None = None) -> Iterator[T]:
    """Iterate with a rich progress bar on stderr (hidden when stderr is not a terminal and not forced)."""
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with _bar(disable) as progress:
        task = progress.add_task(description, total=total)
        for item in iterable:
            yield item
            progress.advance(task)


@contextmanager
def polled_progress(description: str, total: int, poll: Callable[[], int], interval: float = 0.5,
                    disable: bool | None = None) -> Iterator[Callable[[], None]]:
    """A progress bar whose position ``poll()`` gives, asked every ``interval`` seconds on a thread of its own: for
    work done in other processes that report how far they are (e.g. Ray actors writing per-unit counts).

    Yields a function that updates the bar at once (call it when the caller learns of progress itself). A ``poll``
    that raises leaves the bar where it was until the next call."""
    stop = threading.Event()
    with _bar(disable) as progress:
        task = progress.add_task(description, total=total)

        def update() -> None:
            try:
                done = poll()
            except Exception:  # a report half written or gone: the next poll will see it
                return
            progress.update(task, completed=min(total, done))

        def loop() -> None:
            while not stop.wait(interval):
                update()

        poller = threading.Thread(target=loop, name="stratonet-progress", daemon=True)
        if not disable:
            poller.start()
        try:
            yield update
        finally:
            stop.set()
            if poller.is_alive():
                poller.join()
            update()


def warn(message: str) -> None:
    """Say something the user must know (a column left out, a value assumed) on stderr and in the run log."""
    get_logger().warning(message)
    console.print(f"[yellow]warning:[/] {message}", highlight=False, markup=True, soft_wrap=True)

def track_units(iterable: Iterable[T], description: str, total: int, units_of, disable: bool | None = None
                ) -> Iterator[T]:
    """Like :func:`track`, but the bar counts units (e.g. sites) rather than items (e.g. batches of sites).

    ``units_of(item)`` gives how many units an item holds; the bar advances by that after the item is used.
    """
    with _bar(disable) as progress:
        task = progress.add_task(description, total=total)
        for item in iterable:
            yield item
            progress.advance(task, units_of(item))


class WarningRouter:
    """Send Python warnings (mostly third-party: numpy, pandas, scikit-learn, cp_measure) to the run's log file
    instead of the terminal, where they would break into progress bars; count them for a one-line summary.

    >>> with WarningRouter() as router:
    ...     run_command()
    >>> router.count
    """

    def __init__(self) -> None:
        self.count = 0
        self.by_kind: dict[str, int] = {}
        self._saved = None
        self._catcher = None

    def _show(self, message, category, filename, lineno, file=None, line=None) -> None:
        self.count += 1
        kind = f"{category.__name__} from {Path(filename).parent.name}/{Path(filename).name}"
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        get_logger().warning("%s: %s (%s:%s)", category.__name__, message, filename, lineno)

    def __enter__(self) -> "WarningRouter":
        import warnings

        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.showwarning = self._show
        return self

    def __exit__(self, *exc) -> None:
        self._catcher.__exit__(*exc)

    def log_path(self) -> Path | None:
        """The run's log file, if a command opened one."""
        for h in get_logger().handlers:
            if isinstance(h, logging.FileHandler):
                return Path(h.baseFilename)
        return None

    def summary(self) -> str | None:
        """One line for the terminal, or None when nothing was routed."""
        if not self.count:
            return None
        where = self.log_path()
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.by_kind.items(), key=lambda kv: -kv[1])[:2])
        return (f"{self.count} library warning(s) ({kinds}) written to "
                f"{where if where else 'the log (no log file for this command)'}")
