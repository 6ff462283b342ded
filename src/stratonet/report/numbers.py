"""Honest numbers for the report: every number formatted for its kind, and the classifier, confusion and
correlation sections' figures with their n.

Formatting (one place for the whole report): integers as integers, p / q values and learning rates in scientific
notation when small, rates and scores to 3 significant digits, doses as numbers with their unit, sorted numerically
(:func:`fmt_value`, :func:`fmt_column`, :func:`fmt_dose`, :func:`treatment_label`, :func:`dose_unit`).

Every metric carries its n (test samples, classes present of classes trained); cross-validation says how it was
pooled; a class with no test sample is marked absent; a "–" says why; small test sets are flagged; matrices stay
readable (at most :data:`MAX_CLASSES` labelled rows, the rest grouped).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.report import html as H
from stratonet.report.formats import (  # noqa: F401  (re-exported)
    column_kind, fmt_column, fmt_num, fmt_p, fmt_sci, fmt_value, is_missing,
)

MAX_CLASSES = 20
SMALL_TEST = 30

# Formatting lives in report/formats.py (below report/html.py); re-exported here as N.fmt_value and friends.
#: Dose-column units, from the column name (``Metadata_concentration_uM`` or ``..._nM``); the field's default is µM.
_UNIT_SUFFIXES = {"um": "µM", "µm": "µM", "nm": "nM", "mm": "mM", "pm": "pM", "m": "M"}


def dose_unit(column: str | None, unit: str | None = None) -> str:
    """The unit of a dose column: ``unit`` when given, ``"dose index"`` for an ``*index*`` column (no unit), the
    suffix of ``*_uM`` / ``*_nM`` names, else µM (the synthetic plates' and JUMP's concentration unit)."""
    if unit:
        return unit
    c = str(column or "").lower()
    if "mmoles_per_liter" in c:
        return "mM"
    if "index" in c or "step" in c or "level" in c:
        return "dose index"
    suffix = c.rsplit("_", 1)[-1]
    return _UNIT_SUFFIXES.get(suffix, "µM")


def dose_column(columns) -> str | None:
    """The dose column of a table: the profile stage's concentration columns first, else a ``Metadata_*dose*`` or
    ``Metadata_*concentration*`` column (e.g. BBBC013's ``Metadata_dose_index``)."""
    from stratonet.profile.controls import CONCENTRATION_COLUMNS

    cols = list(columns)
    found = next((c for c in CONCENTRATION_COLUMNS if c in cols), None)
    return found or next((c for c in cols if str(c).startswith("Metadata_")
                          and any(w in str(c).lower() for w in ("dose", "concentration"))), None)


def fmt_dose(v: object, unit: str = "µM") -> str:
    """A dose with its unit: ``0.027 µM`` (3 significant digits), ``dose index 3`` for a unitless index."""
    if is_missing(v):
        return "no dose"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if unit == "dose index":
        return f"dose index {fmt_num(x)}"
    return f"{fmt_num(x)} {unit}"


def treatment_label(compound: object, dose: object = None, unit: str = "µM") -> str:
    """``thapsigargin @ 0.027 µM``; the compound alone when there is no dose."""
    name = "unknown" if is_missing(compound) else str(compound)
    return name if is_missing(dose) else f"{name} @ {fmt_dose(dose, unit)}"


def split_treatment_key(key: str) -> tuple[str, float | None]:
    """``'PI3Ki@3'`` (evaluate's compound@dose key) -> ``('PI3Ki', 3.0)``; a key without a number -> (key, None)."""
    name, _, dose = str(key).rpartition("@")
    if not name:
        return str(key), None
    try:
        return name, float(dose)
    except ValueError:
        return str(key), None


def treatment_sort_key(label: object) -> tuple:
    """Sort key of a treatment key or label: compound, then dose as a number (``x @ 0.3 µM`` before ``x @ 10 µM``,
    ``x@2`` before ``x@10``); labels without a dose first within their compound."""
    text = str(label)
    if " @ " in text:
        name, _, dose_text = text.partition(" @ ")
        m = re.search(r"-?\d+(?:\.\d*)?(?:e-?\d+)?", dose_text)
        dose = float(m.group(0)) if m else None
    else:
        name, dose = split_treatment_key(text)
    return (name.strip(), dose is not None, dose if dose is not None else 0.0, text)


def sort_treatments(labels) -> list:
    """Treatment keys or labels sorted by compound, then numerically by dose."""
    return sorted(labels, key=treatment_sort_key)


def _support(d: Path, clf: str) -> pd.DataFrame | None:
    p = d / f"classification_report_{clf}.csv"
    if not p.exists():
        return None
    t = pd.read_csv(p)
    return t[~t["class"].isin(["accuracy", "macro avg", "weighted avg"])]


def pooled_metrics(r: dict) -> dict | None:
    """Pooled out-of-fold metrics when the classifier entry has them (any ``pooled`` / ``oof`` key)."""
    for holder in (r, r.get("cv") or {}):
        for k, v in holder.items():
            if ("pooled" in k or "oof" in k) and isinstance(v, dict):
                return v
    return None


def classifier_rows(classify: dict[str, dict], dirs: dict[str, Path]) -> pd.DataFrame:
    """One row per feature set and classifier: test metrics with n, classes present, CV mean / sd and pooled."""
    rows = []
    for fs, m in classify.items():
        proto = m.get("protocol") or {}
        classes = m.get("classes") or []
        cv_k = proto.get("cv_folds")
        for clf, r in (m.get("classifiers") or {}).items():
            sup = _support(dirs.get(fs, Path("/nonexistent")), clf)
            present = int((sup["support"] > 0).sum()) if sup is not None else None
            n_test = int(sup["support"].sum()) if sup is not None else proto.get("n_test")
            cv = r.get("cv") or {}
            pooled = pooled_metrics(r) or {}
            row = {
                "feature_set": m.get("feature_set", fs), "classifier": clf,
                "accuracy": r.get("accuracy"), "macro_f1": r.get("macro_f1"),
                "n_test": n_test,
                "classes in test": f"{present} of {len(classes)}" if present is not None and classes else None,
                "balanced_accuracy": (r.get("balanced_test") or {}).get("accuracy"),
                "n_test_balanced": proto.get("n_test_balanced"),
                "cv_macro_f1 (mean of folds)": (cv.get("macro_f1") or {}).get("mean"),
                "cv_macro_f1 sd": (cv.get("macro_f1") or {}).get("sd"),
                "cv_folds": cv_k if cv else None,
                "cv pooled macro_f1": pooled.get("macro_f1"), "cv pooled accuracy": pooled.get("accuracy"),
                "cv pooled n": pooled.get("n") or pooled.get("n_samples") or (m.get("n_samples") if pooled else None),
            }
            rows.append(row)
    return pd.DataFrame(rows)


CLASSIFIER_WHY = {
    "n_test": "no classification report or protocol in metrics.json",
    "classes in test": "no classification_report_<clf>.csv",
    "balanced_accuracy": "no balanced test set", "n_test_balanced": "not in metrics.json",
    "cv_macro_f1 (mean of folds)": "no cross-validation (cv ≤ 1)", "cv_macro_f1 sd": "no cross-validation",
    "cv_folds": "no cross-validation",
    "cv pooled macro_f1": "not in metrics.json (pooled out-of-fold metrics are not computed by this version)",
    "cv pooled accuracy": "not in metrics.json", "cv pooled n": "not in metrics.json",
}


def drop_unused_cv_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Drop CV columns empty in every row (the section's text already says why: no CV, or no pooled figures)."""
    cv_cols = [c for c in table.columns if str(c).startswith("cv")]
    return table.drop(columns=[c for c in cv_cols if table[c].isna().all()])


def small_n(table: pd.DataFrame) -> dict[str, int]:
    """Feature set -> its smallest test set, for the sets under :data:`SMALL_TEST` samples."""
    out = {}
    for fs, grp in table.groupby("feature_set", sort=False):
        n = grp["n_test"].dropna()
        if not n.empty and int(n.min()) < SMALL_TEST:
            out[str(fs)] = int(n.min())
    return out


def small_n_warnings(table: pd.DataFrame) -> str:
    """One loud line naming every feature set whose test set has fewer than :data:`SMALL_TEST` samples."""
    small = small_n(table)
    if not small:
        return ""
    ns = sorted(set(small.values()))
    sets = ", ".join(f"{fs} ({n})" for fs, n in small.items()) if len(ns) > 1 else ", ".join(small)
    n = ns[0]
    return (f'<p class="warn" id="small-n">Test sets of fewer than {SMALL_TEST} samples '
            f"({'n = ' + str(n) + ': ' if len(ns) == 1 else 'n: '}{H.esc(sets)}): one sample moves accuracy by "
            f"{fmt_num(1 / n, 2)}, so these figures are anecdotes, not measurements.</p>")


def absent_classes(classify: dict[str, dict], dirs: dict[str, Path]) -> str:
    """One line for the classes trained on but absent from the test set (their F1 is not a measurement), naming the
    feature sets where it happens, and one for CV folds lacking a class."""
    absent: dict[tuple, list[str]] = {}
    lacking: dict[str, list[str]] = {}  # what the folds lack -> feature sets
    for fs, m in classify.items():
        for clf in (m.get("classifiers") or {}):
            sup = _support(dirs.get(fs, Path("/nonexistent")), clf)
            if sup is None:
                continue
            names = tuple(sup.loc[sup["support"] == 0, "class"].astype(str).tolist())
            if names:
                absent.setdefault(names, []).append(fs)
            break
        folds = (m.get("protocol") or {}).get("cv_folds_lacking_classes") or []
        if folds:
            first = folds[0]
            missing = ", ".join(map(str, first.get("classes_absent_from_test", [])))
            what = f"{len(folds)} CV fold(s) lack a class in their test part (e.g. fold {first.get('fold')}: {missing})"
            lacking.setdefault(what, []).append(fs)
    out = [f'<p class="warn">{len(names)} class(es) absent from the test set of {H.esc(", ".join(sets))} (marked '
           f"<i>absent</i> in the confusion matrices; their zero F1 still enters macro F1): "
           f"{H.esc(', '.join(names))}</p>" for names, sets in absent.items()]
    if lacking:
        out.append('<p class="warn">' + H.esc("; ".join(f"{', '.join(sets)}: {what}" for what, sets in lacking.items()))
                   + "; prefer the pooled out-of-fold figures.</p>")
    return "".join(out)


def _heat(val: float) -> str:
    v = float(np.clip(val, 0, 1))
    r, g, b = (int(255 - v * (255 - c)) for c in (31, 90, 160))
    text = "#fff" if v > 0.55 else "#111"
    return f"background:rgb({r},{g},{b});color:{text}"


def group_classes(counts: pd.DataFrame, max_classes: int = MAX_CLASSES) -> pd.DataFrame:
    """Keep the ``max_classes - 1`` classes with the most test samples; sum the rest into one 'other (k)' class."""
    if len(counts) <= max_classes:
        return counts
    support = counts.sum(axis=1).sort_values(ascending=False, kind="stable")
    keep = list(support.index[: max_classes - 1])
    rest = [c for c in counts.index if c not in keep]
    other = f"other ({len(rest)} classes)"
    out = counts.loc[keep, keep].copy()
    out[other] = counts.loc[keep, rest].sum(axis=1)
    out.loc[other] = list(counts.loc[rest, keep].sum(axis=0)) + [counts.loc[rest, rest].to_numpy().sum()]
    return out


def confusion_html(counts: pd.DataFrame, caption: str) -> str:
    """A row-normalised confusion matrix as an HTML heatmap: counts in cells, readable labels, absent rows marked."""
    grouped = group_classes(counts)
    head = "".join(f'<th class="rot" title="{H.esc(c)}">{H.esc(str(c)[:28])}</th>' for c in grouped.columns)
    body = []
    for cls, row in grouped.iterrows():
        n = int(row.sum())
        label = f'<th class="t" title="{H.esc(cls)}">{H.esc(str(cls)[:28])}</th>'
        if n == 0:
            body.append(f'<tr>{label}<td class="t" colspan="{len(grouped.columns)}"><i>absent</i> '
                        f'<span class="why">no test sample of this class</span></td><td>0</td></tr>')
            continue
        cells = "".join(f'<td style="{_heat(v / n)}" title="true {H.esc(cls)}, predicted {H.esc(c)}: {int(v)}">'
                        f'{int(v) if v else ""}</td>' for c, v in row.items())
        body.append(f"<tr>{label}{cells}<td>{n}</td></tr>")
    note = (f'<p class="muted">{len(counts)} classes: the {MAX_CLASSES - 1} with most test samples shown, the rest '
            "grouped as 'other'.</p>" if len(counts) > MAX_CLASSES else "")
    return (f'<figure><figcaption>{H.esc(caption)} (rows: true class, row-normalised colour, counts in cells, '
            f'n = {int(counts.to_numpy().sum())})</figcaption><div class="tbl"><table class="heat"><thead><tr>'
            f'<th class="t">true \\ predicted</th>{head}<th>n</th></tr></thead><tbody>{"".join(body)}</tbody>'
            f"</table></div>{note}</figure>")


def correlation_html(corr: pd.DataFrame, caption: str, limit: int = MAX_CLASSES) -> str:
    """The strongest ``limit`` x ``limit`` block of a feature-set correlation matrix as a labelled heatmap (hover
    shows both full names and r)."""
    a = corr.abs()
    rows = a.max(axis=1).sort_values(ascending=False).index[:limit]
    cols = a.loc[rows].max(axis=0).sort_values(ascending=False).index[:limit]
    sub = corr.loc[rows, cols]
    head = "".join(f'<th class="rot" title="{H.esc(c)}">{H.esc(str(c)[:34])}</th>' for c in sub.columns)
    body = []
    for r, row in sub.iterrows():
        cells = "".join(f'<td style="{_heat(abs(v))}" title="{H.esc(r)} vs {H.esc(c)}: r = {v:.2f}">{v:.2f}</td>'
                        for c, v in row.items())
        body.append(f'<tr><th class="t" title="{H.esc(r)}">{H.esc(str(r)[:40])}</th>{cells}</tr>')
    more = (f'<p class="muted">{len(corr)} x {len(corr.columns)} features in correlation.csv; the {len(rows)} x '
            f"{len(cols)} with the strongest correlations shown.</p>")
    return (f"<figure><figcaption>{H.esc(caption)} (colour: |r|)</figcaption><div class=\"tbl\"><table class=\"heat\">"
            f'<thead><tr><th class="t"></th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
            f"{more}</figure>")
