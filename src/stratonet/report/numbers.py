"""Honest numbers for the classifier, confusion and correlation sections.

Every metric carries its n (test samples, classes present of classes trained); cross-validation says how it was
pooled; a class with no test sample is marked absent; a "–" says why; small test sets are flagged; matrices stay
readable (at most :data:`MAX_CLASSES` labelled rows, the rest grouped).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.report import html as H

MAX_CLASSES = 20
SMALL_TEST = 30


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


def small_n_warnings(table: pd.DataFrame) -> str:
    """A loud line per feature set whose test set has fewer than :data:`SMALL_TEST` samples."""
    out = []
    for fs, grp in table.groupby("feature_set", sort=False):
        n = grp["n_test"].dropna()
        if not n.empty and int(n.min()) < SMALL_TEST:
            out.append(f'<p class="warn" id="small-n-{H.esc(fs)}">{H.esc(fs)}: the test set has only {int(n.min())} '
                       f"samples (fewer than {SMALL_TEST}); one sample moves accuracy by "
                       f"{1 / int(n.min()):.2f}, so these figures mean little.</p>")
    return "".join(out)


def absent_classes(classify: dict[str, dict], dirs: dict[str, Path]) -> str:
    """Per feature set, the classes trained on but absent from the test set (their F1 is not a measurement)."""
    out = []
    for fs, m in classify.items():
        for clf in (m.get("classifiers") or {}):
            sup = _support(dirs.get(fs, Path("/nonexistent")), clf)
            if sup is None:
                continue
            absent = sup.loc[sup["support"] == 0, "class"].astype(str).tolist()
            if absent:
                out.append(f'<p class="warn">{H.esc(fs)}: {len(absent)} class(es) absent from the test set '
                           f"(marked <i>absent</i> in the confusion matrices; their zero F1 still enters macro F1): "
                           f"{H.esc(', '.join(absent))}</p>")
            break
        lacking = (m.get("protocol") or {}).get("cv_folds_lacking_classes") or []
        if lacking:
            first = lacking[0]
            absent = ", ".join(map(str, first.get("classes_absent_from_test", [])))
            out.append(f'<p class="warn">{H.esc(fs)}: {len(lacking)} CV fold(s) lack a class in their test part '
                       f"(e.g. fold {first.get('fold')}: {H.esc(absent)}); prefer the pooled out-of-fold figures.</p>")
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
