"""The error table of a run: failed units of work, one row each (``--on-error skip``).

A plain record with no notion of parts, locks or resume, so every layer may keep one: the extractors (through
:mod:`stratonet.runtime.resumable`, which re-exports it), training (``train treatment``) and the index builder.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


class ErrorLog:
    """Failed units of work, written as a table next to the output (``--on-error skip``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict] = []

    def add(self, site: str, stage: str, message: str, **keys: object) -> None:
        self.rows.append({"site": site, "stage": stage, "error": message, **{k: str(v) for k, v in keys.items()}})

    def __len__(self) -> int:
        return len(self.rows)

    def save(self) -> Path | None:
        """Write the errors table (Parquet + CSV for a quick look); with no errors, remove a table left by an
        earlier run (its sites were retried and succeeded, so it would be stale)."""
        if not self.rows:
            for stale in (self.path.with_suffix(".csv"), self.path.with_suffix(".parquet")):
                stale.unlink(missing_ok=True)
            return None
        df = pd.DataFrame(self.rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(self.path.with_suffix(".csv"), index=False)
        df.to_parquet(self.path.with_suffix(".parquet"), index=False)
        return self.path.with_suffix(".csv")
