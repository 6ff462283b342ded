"""Feature selection that knows the question: keep the features that separate the controls (or a label).

A correlation filter suits MoA profiling (redundant features would weigh one biology many times), but for an assay it
can remove the very feature family that carries the signal (on BBBC013 the default selection removed the GFP/DNA
correlation features: best single feature Z' 0.70 -> -0.04). So when the table has both control kinds (or a label
column is named), :func:`protect_selection` measures each feature's separation *before* selection and:

1. keeps (protects) any of the ``top_n`` best single-feature separators that selection removed;
2. measures the multivariate control separation (Z' of a leave-one-out ``diff[top25]`` readout) before and after
   selection; while selection still costs more than ``margin``, adds back the removed features in order of their
   separation, ``chunk`` at a time (at most ``max_rounds`` times), and warns if the cost stays above the margin.

We keep rather than stop: stopping would make every assay fail on the default route, while the protected features
are a handful (at most ``top_n + chunk * max_rounds``) that barely change an MoA profile. Everything is recorded in
the returned report (the profile's manifest) and said in one or two terminal lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratonet.core.progress import warn

#: Fewer wells of either control than this: no control separation is measured.
MIN_CONTROLS = 3


@dataclass(frozen=True)
class ProtectConfig:
    """How selection is guarded.

    Attributes
    ----------
    enabled : bool
        Measure and protect (False: selection as it is; the report says it was off).
    label : str, optional
        A class column whose separation (ANOVA F) ranks the features instead of the controls.
    control_column, negcon, poscon : str
        Where the controls are.
    top_n : int
        Best single-feature separators that selection may not remove.
    margin : float
        Largest loss of multivariate control Z' accepted.
    chunk, max_rounds : int
        Features added back per round while the loss exceeds ``margin``, and how many rounds.
    """

    enabled: bool = True
    label: str | None = None
    control_column: str = "Metadata_control_type"
    negcon: str = "negcon"
    poscon: str = "poscon"
    top_n: int = 10
    margin: float = 0.05
    chunk: int = 10
    max_rounds: int = 5


def _controls(df: pd.DataFrame, cfg: ProtectConfig) -> tuple[np.ndarray, np.ndarray] | None:
    if cfg.control_column not in df.columns:
        return None
    v = df[cfg.control_column].astype(str).str.strip()
    neg, pos = v.eq(cfg.negcon).to_numpy(), v.eq(cfg.poscon).to_numpy()
    return (neg, pos) if neg.sum() >= MIN_CONTROLS and pos.sum() >= MIN_CONTROLS else None


def feature_separation(X: np.ndarray, neg: np.ndarray | None = None, pos: np.ndarray | None = None,
                       labels: np.ndarray | None = None) -> np.ndarray:
    """Per feature: Z' between the controls, or the ANOVA F of ``labels``; NaN where undefined."""
    if labels is not None:
        from sklearn.feature_selection import f_classif

        with np.errstate(divide="ignore", invalid="ignore"):
            f, _ = f_classif(X, labels)
        return np.where(np.isfinite(f), f, np.nan)
    from stratonet.assay.stats import z_prime_per_column

    return z_prime_per_column(X, pos, neg)


def multivariate_separation(X: np.ndarray, neg: np.ndarray, pos: np.ndarray) -> float:
    """Z' of a leave-one-out ``diff[top25]`` readout of the controls (cheap: nothing iterative is fitted)."""
    from stratonet.assay.stats import z_prime
    from stratonet.assay.readouts import ReadoutSpec, score_readout

    if X.shape[1] == 0:
        return float("nan")
    s = score_readout(X, neg, pos, ReadoutSpec("diff", top_k=25)).scores
    return z_prime(s[pos], s[neg])


def protect_selection(before: pd.DataFrame, after: pd.DataFrame, features: list[str],
                      cfg: ProtectConfig) -> tuple[pd.DataFrame, dict]:
    """Put back into ``after`` the separating features selection removed from ``before`` (see the module doc).

    Parameters
    ----------
    before, after : DataFrame
        The table before and after feature selection (same rows).
    features : list of str
        The feature columns of ``before`` that selection considered.
    cfg : ProtectConfig

    Returns
    -------
    (DataFrame, dict)
        ``after`` with the protected columns back (in their original order), and the report for the manifest.
    """
    from stratonet.evaluate._common import clean_matrix

    if cfg.label is not None and cfg.label not in before.columns:
        from stratonet.core.errors import ConfigError

        raise ConfigError(f"--protect-label: column '{cfg.label}' not in the profiles")
    removed = [f for f in features if f not in after.columns]
    report: dict = {"removed": len(removed), "removed_features": removed[:500], "protected": []}
    ctrl = _controls(before, cfg)
    if not cfg.enabled:
        return after, {**report, "guard": "off (--no-protect)"}
    if cfg.label is None and ctrl is None:
        return after, {**report, "guard": "not measured: no control wells (negcon and poscon) and no --protect-label"}
    X, names = clean_matrix(before, features)
    labels = before[cfg.label].astype(str).to_numpy() if cfg.label else None
    neg, pos = ctrl if ctrl is not None and labels is None else (None, None)
    sep = pd.Series(feature_separation(X, neg, pos, labels), index=names).dropna().sort_values(ascending=False)
    measure = f"ANOVA F of {cfg.label}" if labels is not None else f"Z' {cfg.poscon} vs {cfg.negcon}"
    top = list(sep.index[: cfg.top_n])
    gone = set(removed)
    protected = [f for f in top if f in gone]
    report.update(guard="on", measure=measure, margin=cfg.margin,
                  top_separators=[{"feature": f, "separation": float(sep[f]), "removed": f in gone} for f in top])
    if labels is None:
        col = {f: i for i, f in enumerate(names)}

        def multi(feats: list[str]) -> float:
            return multivariate_separation(X[:, [col[f] for f in feats if f in col]], neg, pos)

        kept = [f for f in features if f in after.columns]
        full, raw = multi(features), multi(kept)
        now = multi(kept + protected)
        queue = [f for f in sep.index if f in gone and f not in protected]
        for _ in range(cfg.max_rounds):
            if not (np.isfinite(full) and np.isfinite(now) and full - now > cfg.margin) or not queue:
                break
            protected += queue[: cfg.chunk]
            queue = queue[cfg.chunk:]
            now = multi(kept + protected)
        report["multivariate_z_prime"] = {"all_features": _f(full), "after_selection": _f(raw),
                                          "kept": _f(now), "readout": "diff[top25], leave-one-out"}
        report["cost"] = _f(full - now)
        report["cost_without_protection"] = _f(full - raw)
        report["cost_above_margin"] = bool(np.isfinite(full - now) and full - now > cfg.margin)
    report["protected"] = protected
    keep = set(protected)
    out = pd.concat([after, before[[f for f in features if f in keep]]], axis=1)
    order = [c for c in before.columns if c in out.columns] + [c for c in out.columns if c not in before.columns]
    return out[order], report


def _f(v: float) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def selection_lines(report: dict) -> list[str]:
    """One or two lines for the terminal: what selection removed, what it cost, what was kept."""
    n = report.get("removed", 0)
    if report.get("guard") != "on":
        return [f"selection removed {n} feature(s); separation guard {report.get('guard')}"] if n else []
    prot = report.get("protected", [])
    top = report.get("top_separators", [])
    hit = [t for t in top if t["removed"]]
    lines = [f"selection removed {n} feature(s), {len(hit)} of the {len(top)} best separators ({report['measure']})"
             + (f", e.g. {hit[0]['feature']} ({hit[0]['separation']:.2f})" if hit else "")]
    mv = report.get("multivariate_z_prime")
    if mv:
        lines[0] += (f"; multivariate Z' {_fmt(mv['all_features'])} -> {_fmt(mv['after_selection'])} without "
                     "protection")
    if prot:
        lines.append(f"kept {len(prot)} separating feature(s) selection removed (protected)"
                     + (f": multivariate Z' {_fmt(mv['kept'])}" if mv else "") + "; --no-protect turns this off")
    if report.get("cost_above_margin"):
        warn(f"feature selection still costs {report['cost']:.2f} of multivariate control Z' (margin "
             f"{report['margin']}): for an assay use --select drop_na_columns")
    return lines


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"
