"""Number formatting for the whole report: each value by its kind (integer, p / q value, scientific, real).

The lowest module of the report: the HTML building blocks (:mod:`stratonet.report.html`) and the report's number
sections (:mod:`stratonet.report.numbers`, which re-exports these functions) both format through it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Column-name words that mark a p / q value (scientific notation below 0.001).
_P_WORDS = ("p_value", "q_value", "p-value", "q-value", "pvalue", "qvalue", "min_q", "corrected_p")
#: Column-name words that mark a learning rate or another quantity best read in scientific notation.
_SCI_WORDS = ("lr", "learning_rate", "weight_decay", "epsilon")
#: Column names that count things (shown as integers even when stored as floats).
_INT_WORDS = ("n_", "count", "epoch", "cells", "sites", "wells", "rows", "features", "errors", "hits", "doses",
              "folds", "support", "plates", "classes", "step")


def is_missing(v: object) -> bool:
    """None, NaN or pandas' NA."""
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def fmt_num(v: float, digits: int = 3) -> str:
    """A real number to ``digits`` significant digits, without scientific notation between 1e-3 and 1e6 (an exact
    integer stays an integer: ``1.0`` -> ``1``)."""
    v = float(v)
    if not math.isfinite(v):
        return "–" if math.isnan(v) else ("∞" if v > 0 else "-∞")
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    a = abs(v)
    if a < 1e-3 or a >= 1e6:
        return f"{v:.{max(1, digits - 1)}e}"
    decimals = digits - 1 - math.floor(math.log10(a))
    if decimals <= 0:
        return f"{v:.0f}"
    text = f"{v:.{decimals}f}"
    short = text.rstrip("0").rstrip(".")
    return text if float(short) == int(float(short)) else short  # 0.9999 -> "1.00", never a falsely exact "1"


def fmt_p(p: object) -> str:
    """A p or q value: 2 significant digits, scientific notation below 0.001 (``3.2e-05``), never ``0.000``."""
    if is_missing(p):
        return "–"
    p = float(p)
    if p == 0:
        return "0"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.2g}"


def fmt_sci(v: object) -> str:
    """A learning rate or similar: ``1e-04``, ``3e-03`` (never ``0.000``)."""
    if is_missing(v):
        return "–"
    v = float(v)
    return "0" if v == 0 else f"{v:.2g}" if 1e-2 <= abs(v) < 1e3 else f"{v:.1e}"


def column_kind(name: object) -> str:
    """How a column's numbers are shown: ``"p"``, ``"sci"``, ``"int"`` or ``"num"``, from its name."""
    n = str(name).lower()
    if any(w in n for w in ("fraction", "rate", "share", "ratio", "mean", "median", "pct", "per_")):
        return "sci" if n.endswith(("_lr", "learning_rate")) else ("p" if any(w in n for w in _P_WORDS) else "num")
    words = n.replace(" ", "_").replace("(", "_").replace(")", "_").split("_")
    if any(w in n for w in _P_WORDS) or words[-1] in ("p", "q") or words[0] in ("p", "q"):
        return "p"
    if any(w in words for w in _SCI_WORDS):
        return "sci"
    if any(n.startswith(w) or w in words or n.endswith(w) for w in _INT_WORDS):
        return "int"
    return "num"


def fmt_value(v: object, kind: str = "num", digits: int = 3) -> str:
    """One value for a table cell or label by kind (see :func:`column_kind`); text is returned as it is."""
    if is_missing(v):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if not isinstance(v, (int, float, np.integer, np.floating)):
        return str(v)
    if kind == "p":
        return fmt_p(v)
    if kind == "sci":
        return fmt_sci(v)
    if kind == "int" and float(v) == int(v):
        return str(int(v))
    return fmt_num(v, digits)


def fmt_column(values, name: object, digits: int = 3) -> list[str]:
    """A whole column formatted by its name's kind; a column whose numbers are all whole is shown as integers."""
    vals = list(values)
    kind = column_kind(name)
    nums = [float(v) for v in vals if isinstance(v, (int, float, np.integer, np.floating))
            and not isinstance(v, (bool, np.bool_)) and not is_missing(v)]
    if kind == "num" and nums and all(x == int(x) for x in nums):
        kind = "int"
    return [fmt_value(v, kind, digits) for v in vals]
