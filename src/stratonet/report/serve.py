"""``stratonet view``: open a run's report in the local browser, or serve it on 127.0.0.1 for a remote run.

The report is one self-contained file, so opening it needs no server; a server is for runs on another machine,
reached through an SSH tunnel (``ssh -L PORT:127.0.0.1:PORT host``). It binds to 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

from stratonet.core.errors import InputFileError


def find_report(run: str | Path) -> Path:
    """The report of a run folder (``<run>/report/report.html``), or ``run`` itself when it is an HTML file.

    Raises
    ------
    InputFileError
        Naming the path, when there is no report (with the command that writes one).
    """
    p = Path(run)
    if p.is_file() and p.suffix.lower() in (".html", ".htm"):
        return p
    if not p.exists():
        raise InputFileError(str(p), "run folder not found")
    report = p / "report" / "report.html"
    if not report.is_file():
        raise InputFileError(str(report), f"no report yet (write it with: stratonet report {p})")
    return report


def is_remote_session() -> bool:
    """True on a machine reached over SSH without a display (a browser there would be of no use)."""
    over_ssh = bool(os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"))
    display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return over_ssh and not display


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass


def serve_report(report: Path, port: int = 0) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start a background HTTP server on 127.0.0.1 for the report's folder; returns (server, URL of the report).

    ``port=0`` picks a free port. Call ``server.shutdown()`` to stop it.
    """
    handler = functools.partial(_QuietHandler, directory=str(report.parent.resolve()))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise InputFileError(f"127.0.0.1:{port}", f"cannot serve ({exc.strerror or exc})") from exc
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/{report.name}"
