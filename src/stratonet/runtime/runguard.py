"""Run safety for the extractors: one run per output, clean termination, and fault points for tests.

- :class:`OutputLock`: an exclusive lock per output (``flock`` on a lock file that records pid, host and start
  time). A second run on the same output refuses with one line; a lock left by a dead process is taken over.
- :func:`interrupt_on_sigterm`: SIGTERM (and SIGHUP) raise ``KeyboardInterrupt`` in the main thread, so a
  terminated run flushes what it has and exits like Ctrl-C.
- :func:`die_with_parent`: worker processes ask the kernel to kill them when their parent dies
  (``PR_SET_PDEATHSIG``), so a ``kill -9`` of the main process leaves no orphans.
- :func:`fault_point`: a named point where tests inject a fault through ``STRATONET_FAULT``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from stratonet.core.errors import StratoNetError

FAULT_ENV = "STRATONET_FAULT"
_fault_hits: dict[str, int] = {}
_held: dict[Path, list] = {}  # lock path -> [fd, depth]: re-entrant within one process


class OutputLockedError(StratoNetError):
    """Another run holds the lock of this output."""


def lock_path(out: str | Path) -> Path:
    """The lock file of an output: ``<dir>/stratonet.lock`` for a folder output, ``<file>.lock`` for a table."""
    p = Path(out)
    if p.is_dir() or not p.suffix:
        return p / "stratonet.lock"
    return p.with_name(p.name + ".lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


class OutputLock:
    """Exclusive lock on an output (context manager).

    Parameters
    ----------
    out : path
        The output (a folder or a table file); the lock file is :func:`lock_path` of it.

    Raises
    ------
    OutputLockedError
        When another live process holds the lock; the message names it (pid, host, start time).
    """

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.path = lock_path(self.out).resolve()

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock or raise :class:`OutputLockedError`."""
        import fcntl

        held = _held.get(self.path)
        if held is not None:
            held[1] += 1
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):  # retried when the file was replaced between open and flock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._refuse(_read_holder(self.path))
            except OSError:  # a file system without flock (some network mounts): fall back to the pid check
                holder = _read_holder(self.path)
                if holder and holder.get("host") == socket.gethostname() and _pid_alive(int(holder.get("pid", 0))) \
                        and int(holder.get("pid", 0)) != os.getpid():
                    os.close(fd)
                    self._refuse(holder)
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv[1:6]}
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(info).encode())
            _held[self.path] = [fd, 1]
            return
        raise OutputLockedError(f"{self.out}: cannot take the lock {self.path} (it keeps changing)")

    def _refuse(self, holder: dict) -> None:
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('started', '?')}"
        raise OutputLockedError(f"{self.out} is being written by another run ({who}); wait for it to finish or "
                                f"stop it (the lock is {self.path})")

    def release(self) -> None:
        """Release the lock (the outermost release removes the lock file)."""
        held = _held.get(self.path)
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del _held[self.path]
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(held[0])


class _Interrupted:
    """Whether a SIGINT/SIGTERM arrived during the current guarded run."""

    flag = False


def interrupt_exit_code() -> int:
    """The shell's exit status for the signal that stopped the run: 128 + its number (SIGINT 130, SIGTERM 143)."""
    return 128 + int(getattr(_Interrupted, "signum", signal.SIGINT))


def interrupted() -> bool:
    """True once SIGINT or SIGTERM arrived inside :func:`interrupt_on_sigterm`."""
    return _Interrupted.flag


@contextlib.contextmanager
def interrupt_on_sigterm():
    """Within the block, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` in the main thread, as SIGINT does.

    The extractors flush their buffered rows on ``KeyboardInterrupt``, and the CLI prints "interrupted; what was
    written is kept and a rerun resumes". Outside the main thread (e.g. a web server's worker) nothing is changed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _Interrupted.flag = True
        _Interrupted.signum = int(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    _Interrupted.flag = False
    _Interrupted.signum = int(signal.SIGINT)
    wanted = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    old = {}
    for sig in wanted:
        current = signal.getsignal(sig)
        if sig == signal.SIGINT and current is not signal.default_int_handler:
            continue  # SIGINT ignored or handled by the caller (e.g. a test runner): leave it
        old[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent exits (Linux; elsewhere nothing).

    Call it first thing in a worker process. If the parent is already gone, exit at once.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(sig), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent or parent == 1:  # the parent died before prctl took effect
        os._exit(1)


def worker_init() -> None:
    """Initializer of extractor worker processes: die with the parent; leave Ctrl-C to the parent."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def fault_point(name: str) -> None:
    """A place where tests inject a fault; does nothing unless ``STRATONET_FAULT`` names this point.

    ``STRATONET_FAULT`` is ``<name>[@<n>][:<action>]``: at the n-th pass (default 1) through the point, do the
    action: ``kill`` (SIGKILL this process, the default), ``term`` (SIGTERM), ``int`` (SIGINT) or ``hang`` (sleep
    for an hour, for watchdog tests; the pid is written to ``$STRATONET_FAULT_MARK`` when set).
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    target, _, action = spec.partition(":")
    target, _, nth = target.partition("@")
    if target != name:
        return
    _fault_hits[name] = _fault_hits.get(name, 0) + 1
    if _fault_hits[name] != int(nth or 1):
        return
    action = action or "kill"
    if action == "hang":
        mark = os.environ.get(FAULT_ENV + "_MARK")
        if mark:  # tells a test that the process is parked here
            Path(mark).write_text(str(os.getpid()))
        time.sleep(3600)
    else:
        sig = {"kill": signal.SIGKILL, "term": signal.SIGTERM, "int": signal.SIGINT}[action]
        mark = os.environ.get(FAULT_ENV + "_MARK")
        if mark:  # tells a test that the fault fired (e.g. in a Ray worker it cannot watch)
            with open(mark, "a") as f:
                f.write(f"{os.getpid()}\n")
        os.kill(os.getpid(), sig)
        time.sleep(5)  # let the signal arrive (a handler raises from here)


def guarded_output(out_argument: str = "out"):
    """Decorator: run the function holding :class:`OutputLock` on its ``out_argument`` and with SIGTERM handled
    like Ctrl-C (:func:`interrupt_on_sigterm`)."""
    import functools
    import inspect

    def wrap(func):
        sig = inspect.signature(func)

        @functools.wraps(func)
        def run(*args, **kwargs):
            out = sig.bind(*args, **kwargs).arguments[out_argument]
            with OutputLock(out), interrupt_on_sigterm():
                return func(*args, **kwargs)

        return run

    return wrap


MP_TEMP_PREFIX = "stratonet-pymp-"


def own_mp_tempdir() -> Path:
    """Give this process's multiprocessing a temporary folder named by its pid, and remove those of dead runs.

    multiprocessing keeps its fork-server socket in a ``pymp-*`` folder that only a normal exit removes, so every
    kill -9 of ``extract classical -j N`` used to leave one behind (issue 27, D9). Named by pid, the folder of a
    run that died is recognised, and removed, by the next run.
    """
    import shutil
    import tempfile
    from multiprocessing import process, util

    base = Path(tempfile.gettempdir())
    for stale in base.glob(MP_TEMP_PREFIX + "*"):
        pid = stale.name[len(MP_TEMP_PREFIX):]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    config = process.current_process()._config  # where multiprocessing.util.get_temp_dir keeps its folder
    if config.get("tempdir") is None:
        mine = base / f"{MP_TEMP_PREFIX}{os.getpid()}"
        mine.mkdir(exist_ok=True)
        util.Finalize(None, shutil.rmtree, args=[str(mine), True], exitpriority=-100)  # as get_temp_dir does
        config["tempdir"] = str(mine)
    return Path(config["tempdir"])


# A fork server (multiprocessing's "forkserver") lives as long as any worker it forked, and each worker dies with
# the fork server: a kill -9 of the run would leave both behind. So the run names itself in POOL_PARENT_ENV before
# it starts the fork server, and this module, preloaded there, makes the fork server die with the run.
POOL_PARENT_ENV = "STRATONET_POOL_PARENT"
if os.environ.get(POOL_PARENT_ENV) == str(os.getppid()):
    die_with_parent()
