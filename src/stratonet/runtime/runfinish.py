"""The start and end of a run, the same for every extractor and engine: output checks, error table, manifest.

- :func:`require_parquet_output` and :func:`require_rows` refuse a run that cannot write anything, before any work.
- :func:`errors_path`: the one name of a run's error table, ``<output stem>.errors.csv`` (and ``.parquet``) beside
  a table output, ``errors.csv`` inside a folder output.
- :func:`finish_run` writes the error table and the manifest, and fails loudly (naming the error table only when
  one was written) when no row could be written.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stratonet.core.errors import ConfigError, StratoNetError


def require_parquet_output(out: str | Path, what: str) -> Path:
    """``out`` as a Path; a name that does not end in ``.parquet`` (or an existing folder) is a ConfigError."""
    p = Path(out)
    if not p.name.lower().endswith(".parquet") or p.is_dir():
        raise ConfigError(f"{out}: {what} are written as one Parquet file; name the output <name>.parquet")
    return p


def require_rows(index: pd.DataFrame, source: str) -> None:
    """An index with no rows is an error (exit 2), not a run that writes nothing and reports success."""
    if len(index) == 0:
        raise ConfigError(f"{source}: the index has 0 rows, so there is nothing to extract; check the folder or "
                          "filters it was built from")


def errors_path(out: str | Path) -> Path:
    """Where the failed sites of the run writing ``out`` are listed (CSV; a Parquet copy sits beside it)."""
    p = Path(out)
    if p.suffix.lower() in (".parquet", ".csv", ".gz"):
        stem = p.name.split(".")[0] if p.name.lower().endswith(".csv.gz") else p.name.rsplit(".", 1)[0]
        return p.with_name(stem + ".errors.csv")
    return p / "errors.csv"  # a folder output (extract classical)


def finish_run(errors, manifest: dict, manifest_file: str | Path, wrote_rows: bool, what: str = "site") -> dict:
    """Save the error table, complete and write the manifest, and fail when nothing was written.

    Parameters
    ----------
    errors : stratonet.runtime.resumable.ErrorLog
    manifest : dict
        The run's manifest; ``errors`` (count) and ``errors_file`` (path or None) are added.
    manifest_file : path
    wrote_rows : bool
        Whether the output holds any row (this run's or a resumed one's).
    what : str
        The unit named in the failure message.

    Returns
    -------
    dict
        The manifest as written.
    """
    from stratonet.core.runinfo import write_json

    errors_file = errors.save()
    manifest["errors"] = len(errors)
    manifest["errors_file"] = str(errors_file) if errors_file else None
    write_json(manifest, manifest_file)
    if not wrote_rows:
        where = f"; they are listed in {errors_file}" if errors_file else ""
        raise StratoNetError(f"no {what} could be processed ({len(errors)} error(s){where})")
    return manifest
