"""`stratonet view RUN`: open the run's report, or serve it on 127.0.0.1 for a run on a remote machine."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("view")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--port", type=int, default=None,
              help="Serve the report on http://127.0.0.1:PORT (0: any free port) instead of opening the file; the "
                   "default when the session is SSH without a display is 8765.")
@click.option("--no-browser", is_flag=True, help="Do not start a browser; print the address only.")
def view(run: Path, port: int | None, no_browser: bool) -> None:
    """Open RUN's report (RUN/report/report.html, or RUN itself when it is an HTML file).

    On a remote machine, serve it and open a tunnel from your own computer: ssh -L PORT:127.0.0.1:PORT host,
    then browse http://127.0.0.1:PORT/report.html.
    """
    import time
    import webbrowser

    from stratonet.core.progress import console
    from stratonet.report.serve import find_report, is_remote_session, serve_report

    report = find_report(run)
    if port is None and is_remote_session():
        port = 8765
    if port is None:
        uri = report.resolve().as_uri()
        console.print(f"report: {uri}", soft_wrap=True, highlight=False)
        if not no_browser and not webbrowser.open(uri):
            console.print("no browser found here; open the address above, or use --port to serve it",
                          highlight=False)
        return
    server, url = serve_report(report, port)
    p = server.server_address[1]
    console.print(f"serving {report.resolve()} at {url} (127.0.0.1 only; Ctrl-C stops)", soft_wrap=True,
                  highlight=False)
    console.print(f"from another machine: ssh -L {p}:127.0.0.1:{p} <this host>, then open {url}", soft_wrap=True,
                  highlight=False)
    if not no_browser:
        webbrowser.open(url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.shutdown()
