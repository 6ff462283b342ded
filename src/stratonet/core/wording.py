"""Small helpers that keep terminal and manifest wording right: plurals, and what one index row is."""

from __future__ import annotations

from collections.abc import Iterable


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 site"``, ``"2 sites"``, ``"0 sites"``; ``many`` for irregular plurals."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def row_unit(columns: Iterable[str]) -> str:
    """What one row of an index is: ``"crop"`` for array stacks (single-cell crops), else ``"site"``."""
    cols = set(columns)
    return "crop" if "Path_Stack" in cols or "Metadata_ObjectNumber" in cols else "site"
