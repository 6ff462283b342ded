"""How a plate names its controls, and the one rewrite into the field's ``negcon`` / ``poscon`` / ``trt``.

Every command that needs controls (``index``, ``profile``, ``evaluate``, ``report``) takes the same options
(``--control-column``, ``--negcon``, ``--poscon``, ``--controls FILE``; see :mod:`stratonet.cli.controls`) and
calls :func:`apply_control_names`, which writes ``Metadata_control_type`` with the field's values and says what it
changed. Downstream code then only ever looks for ``negcon`` / ``poscon``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stratonet.core.errors import ConfigError, InputFileError

CONTROL_COLUMN = "Metadata_control_type"
#: The option that fixes a "no controls found" error, for the messages.
FIX = "--negcon VALUE --poscon VALUE (comma-separated values allowed), --control-column COLUMN or --controls FILE"


@dataclass(frozen=True)
class ControlNames:
    """Which values of which column are the negative and positive controls.

    Attributes
    ----------
    column : str
        Column holding the control names (default ``Metadata_control_type``).
    negcon, poscon : tuple of str
        Values of ``column`` that are negative / positive controls (default ``negcon`` / ``poscon``).
    """

    column: str = CONTROL_COLUMN
    negcon: tuple[str, ...] = ("negcon",)
    poscon: tuple[str, ...] = ("poscon",)

    @property
    def is_default(self) -> bool:
        return self == ControlNames()

    def describe(self) -> str:
        return f"{self.column}: negcon = {', '.join(self.negcon)}; poscon = {', '.join(self.poscon)}"


def parse_values(text: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``; None or empty -> ``default``."""
    if not text:
        return default
    return tuple(v.strip() for v in str(text).split(",") if v.strip())


def read_control_file(path: str | Path) -> ControlNames:
    """A mapping file -> :class:`ControlNames`.

    The file is a CSV/TSV with columns ``value`` and ``control_type`` (``negcon`` or ``poscon``; other rows are
    ignored) and optionally ``column`` (one column name for every row), e.g.::

        value,control_type
        negative_control,negcon
        positive_control,poscon
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(str(path), "controls file not found")
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    try:
        m = pd.read_csv(path, sep=sep, dtype=str)
    except Exception as exc:  # pandas' parser errors vary by engine
        raise InputFileError(str(path), f"not a readable CSV/TSV ({exc})") from exc
    if not {"value", "control_type"} <= set(m.columns):
        raise InputFileError(str(path), f"needs columns value and control_type (it has {', '.join(m.columns)})")
    kinds = m["control_type"].str.strip().str.lower()
    columns = m["column"].dropna().unique().tolist() if "column" in m.columns else []
    if len(columns) > 1:
        raise InputFileError(str(path), f"one control column per file, found {', '.join(columns)}")
    neg = tuple(m.loc[kinds == "negcon", "value"].str.strip())
    pos = tuple(m.loc[kinds == "poscon", "value"].str.strip())
    if not neg:
        raise InputFileError(str(path), "no row with control_type negcon")
    col = columns[0] if columns else CONTROL_COLUMN
    return ControlNames(col if col.startswith("Metadata_") else f"Metadata_{col}", neg, pos or ("poscon",))


def found_values(df: pd.DataFrame, column: str, limit: int = 10) -> str:
    """The distinct values of ``column`` with counts, for an error message (the first ``limit``)."""
    counts = df[column].astype(str).value_counts()
    shown = ", ".join(f"{v} ({n})" for v, n in counts.head(limit).items())
    return shown + (f" and {len(counts) - limit} more" if len(counts) > limit else "")


def metadata_columns(df: pd.DataFrame, limit: int = 20) -> str:
    """The table's Metadata_* columns, for an error message."""
    cols = [c for c in df.columns if str(c).startswith("Metadata_")]
    return ", ".join(cols[:limit]) + (f" and {len(cols) - limit} more" if len(cols) > limit else "") or "none"


def apply_control_names(df: pd.DataFrame, names: ControlNames, where: str = "table") -> tuple[pd.DataFrame, str]:
    """Write ``Metadata_control_type`` as ``negcon`` / ``poscon`` (/ ``trt`` for other rows of another column).

    Parameters
    ----------
    df : DataFrame
    names : ControlNames
        With the defaults the table is returned unchanged.
    where : str
        The table's name, for messages.

    Returns
    -------
    (DataFrame, str)
        The table (a copy when changed) and a one-line note of what was rewritten ("" when nothing was).

    Raises
    ------
    ConfigError
        The column is missing (the message lists the Metadata columns), or no row has a negcon value (the message
        lists the values found and the options that fix it).
    """
    if names.is_default:
        return df, ""
    if names.column not in df.columns:
        raise ConfigError(f"{where}: control column {names.column} not found (Metadata columns: "
                          f"{metadata_columns(df)}); name it with --control-column COLUMN")
    values = df[names.column].astype(str).str.strip()
    neg, pos = values.isin(names.negcon), values.isin(names.poscon)
    if not neg.any() and names.column == CONTROL_COLUMN and values.eq("negcon").any():
        return df, ""  # already rewritten by an earlier command given the same names (e.g. index)
    if not neg.any():
        raise ConfigError(f"{where}: no negative control: {names.column} has no value {', '.join(names.negcon)} "
                          f"(values found: {found_values(df, names.column)}); use {FIX}")
    if names.poscon != ("poscon",) and not pos.any():
        raise ConfigError(f"{where}: no positive control: {names.column} has no value {', '.join(names.poscon)} "
                          f"(values found: {found_values(df, names.column)}); use {FIX}")
    out = df.copy()
    # rows that are neither: their own value in the control column, else trt; never a stale negcon/poscon
    other = values if names.column == CONTROL_COLUMN else pd.Series("trt", index=df.index)
    other = other.where(~other.isin(["negcon", "poscon"]), "trt")
    out[CONTROL_COLUMN] = other.where(~neg, "negcon").where(~pos, "poscon").to_numpy()
    note = (f"controls from {names.column}: {', '.join(names.negcon)} -> negcon ({int(neg.sum())} rows), "
            f"{', '.join(names.poscon)} -> poscon ({int(pos.sum())} rows)")
    if names.column != CONTROL_COLUMN:
        note += f"; {CONTROL_COLUMN} {'replaced' if CONTROL_COLUMN in df.columns else 'written'}, other rows trt"
    return out, note
