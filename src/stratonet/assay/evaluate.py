"""Assay analytics on a well-level profile table: control statistics (Z', robust Z', SSMD, S/B, CV), readouts scored
out of sample, dose-response 4PL fits, and hit calling against negcon beside copairs' phenotypic-activity mAP.

Everything is computed per plate: the readout model is fitted on that plate's controls, and a plate's wells are
tested against that plate's negcon wells. See :mod:`stratonet.assay.readouts`, :mod:`stratonet.assay.dose`,
:mod:`stratonet.assay.hits` and :mod:`stratonet.assay.stats` for the parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.assay.config import MIN_CONTROLS, AssayConfig, AssayControlError, Controls  # noqa: F401
from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.assay.stats import control_statistics, z_prime, z_prime_per_column
from stratonet.assay.dose import DoseFit, fit_4pl, plot_dose_curves
from stratonet.assay.hits import call_hits
from stratonet.assay.readouts import DISTANCES, REFERENCE, ReadoutSpec, score_readout
from stratonet.core.progress import get_logger

#: Features kept by the default readout (ranked inside each fold).
DEFAULT_TOP_K = 25
#: Below this many wells in all, a statistic is flagged as coming from a small sample.
SMALL_N = 30


def _matrix(df: pd.DataFrame, features: Sequence[str]) -> tuple[np.ndarray, list[str], int]:
    """Features as a finite float matrix (NaN -> column median); constant and all-NaN columns dropped."""
    from stratonet.evaluate._common import clean_matrix

    X, names = clean_matrix(df, list(features))
    return X, names, len(features) - len(names)


def _z_rows(p: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Z' of each row of two (resamples x wells) matrices of positive- and negative-control scores."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - 3 * (p.std(axis=1, ddof=1) + n.std(axis=1, ddof=1)) / np.abs(p.mean(axis=1) - n.mean(axis=1))


def _bootstrap_zprime(pos: np.ndarray, neg: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of Z' by resampling the control wells' scores."""
    rng = np.random.default_rng(seed)
    ip = rng.integers(0, len(pos), size=(n_boot, len(pos)))
    ineg = rng.integers(0, len(neg), size=(n_boot, len(neg)))
    z = _z_rows(pos[ip], neg[ineg])
    lo, hi = np.nanpercentile(z[np.isfinite(z)], [2.5, 97.5]) if np.isfinite(z).any() else (np.nan, np.nan)
    return float(lo), float(hi)


def readout_agreement(a: np.ndarray, b: np.ndarray, neg: np.ndarray, pos: np.ndarray, n_boot: int = 1000,
                      seed: int = 0) -> dict:
    """Z'(a) - Z'(b) of two readouts of the same wells, with a paired bootstrap 95 % interval over the controls.

    ``disagree`` is True when the interval excludes 0: the readouts differ by more than their sampling noise.
    """
    rng = np.random.default_rng(seed)
    ip = np.flatnonzero(pos)[rng.integers(0, int(pos.sum()), size=(n_boot, int(pos.sum())))]
    ineg = np.flatnonzero(neg)[rng.integers(0, int(neg.sum()), size=(n_boot, int(neg.sum())))]
    d = _z_rows(a[ip], a[ineg]) - _z_rows(b[ip], b[ineg])
    d = d[np.isfinite(d)]
    diff = z_prime(a[pos], a[neg]) - z_prime(b[pos], b[neg])
    if not d.size:
        return {"z_prime_difference": _num(diff), "difference_ci95": [None, None], "disagree": False}
    lo, hi = (float(v) for v in np.percentile(d, [2.5, 97.5]))
    return {"z_prime_difference": _num(diff), "difference_ci95": [lo, hi], "disagree": bool(lo > 0 or hi < 0)}


def default_dose(df: pd.DataFrame, dose_column: str | None, dose_scale: str) -> tuple[str | None, bool]:
    """The dose column and whether to fit on log10 dose.

    ``dose_scale='auto'``: log10 for a concentration column, linear for a column named like a dose index
    (``*index*``, ``*step*``), whose steps are already log-spaced.
    """
    from stratonet.profile.controls import dose_column as find_dose

    col = dose_column or find_dose(df)
    if col is None:
        return None, False
    if col not in df.columns:
        raise StratoNetError(f"dose column '{col}' not in profiles")
    if dose_scale == "auto":
        return col, not any(k in col.lower() for k in ("index", "step"))
    if dose_scale not in ("log", "linear"):
        raise ConfigError(f"--dose-scale must be auto, log or linear (got {dose_scale})")
    return col, dose_scale == "log"


def feature_zprimes(X: np.ndarray, names: list[str], neg: np.ndarray, pos: np.ndarray) -> pd.DataFrame:
    """Z' of every single feature, best first. Choosing the best one on the same controls is in-sample."""
    z = z_prime_per_column(X, pos, neg)
    out = pd.DataFrame({"feature": names, "z_prime": z})
    return out.sort_values("z_prime", ascending=False, na_position="last").reset_index(drop=True)


@dataclass
class AssayResult:
    """What :func:`evaluate_assay` found: the ``metrics.json`` content and the tables and figures' data.

    Attributes
    ----------
    metrics : dict
        Per plate and readout the statistics (with ``n_pos``, ``n_neg``), the best single features, dose fits,
        hit counts and ``warnings``.
    control_stats, feature_zprime, wells, dose_fits : DataFrame
        ``control_stats.csv``, ``feature_zprime.csv``, ``well_scores.csv`` (its hits: ``hits.csv``) and
        ``dose_fits.csv``.
    hits_vs_map : DataFrame or None
        ``hits_vs_map.csv`` (None without mAP).
    curves, distributions : list
        The data of ``dose_curves.png`` and ``control_distributions.png``.
    """

    metrics: dict
    control_stats: pd.DataFrame
    feature_zprime: pd.DataFrame
    wells: pd.DataFrame
    dose_fits: pd.DataFrame
    hits_vs_map: pd.DataFrame | None = None
    curves: list = field(default_factory=list)
    distributions: list = field(default_factory=list)


@dataclass
class _Plan:
    """What every plate shares: the features, plates, readouts, controls and the dose setup."""

    feats: list[str]
    plates: list[str]
    readouts: list[ReadoutSpec]
    controls: Controls
    comp_col: str | None
    dose_col: str | None
    log_dose: bool
    dose_why: str
    warnings: list[str]


@dataclass
class _Tables:
    """Rows gathered plate by plate."""

    stat_rows: list = field(default_factory=list)
    feat_rows: list = field(default_factory=list)
    well_tables: list = field(default_factory=list)
    dose_rows: list = field(default_factory=list)
    curves: list = field(default_factory=list)
    dist_data: list = field(default_factory=list)


def evaluate_assay(df: pd.DataFrame, cfg: AssayConfig = AssayConfig(), name: str = "features",
                   provenance: dict | None = None) -> AssayResult:
    """Control statistics, readouts, dose-response fits and hits, per plate.

    Parameters
    ----------
    df : DataFrame
        Well-level profiles (one row per well) with a control column.
    cfg : AssayConfig
        Features, readouts, controls, dose and hit settings (see :class:`stratonet.assay.config.AssayConfig`).
    name, provenance : str, dict
        The feature-set name (``feature_set``) and the input table's provenance, both kept in the metrics.

    Returns
    -------
    AssayResult
        ``metrics`` (the content of ``metrics.json``) and the tables; :func:`write_assay` saves them.
    """
    from stratonet.evaluate._common import drop_attrs

    drop_attrs(df)
    plan = _plan(df, cfg)
    result: dict = {"feature_set": name, "provenance": provenance or {}, "n_wells": int(len(df)),
                    "n_features": len(plan.feats), "controls": vars(plan.controls).copy(),
                    "readouts": [r.label for r in plan.readouts], "primary_readout": plan.readouts[0].label,
                    "dose_column": plan.dose_col,
                    "dose_scale": ("log10" if plan.log_dose else "linear") if plan.dose_col else None,
                    "compound_column": plan.comp_col, "fdr": cfg.fdr, "p_method": cfg.p_method, "plates": {},
                    "out_of_sample": "a control well is scored by a model fitted without it (leave-one-out); other "
                                     "wells by the model fitted on all controls", "warnings": plan.warnings}
    tables = _Tables()
    for plate in plan.plates:
        result["plates"][plate] = _assay_plate(df, plate, cfg, plan, tables)
    wells = pd.concat(tables.well_tables, ignore_index=True)
    result["summary"] = _summary(result)
    map_table = _map_activity(df, wells, cfg, plan, result) if cfg.with_map else None
    log = get_logger()
    for w in plan.warnings:
        log.warning(w)
    return AssayResult(result, pd.DataFrame(tables.stat_rows), pd.concat(tables.feat_rows, ignore_index=True),
                       wells, pd.DataFrame(tables.dose_rows), map_table, tables.curves, tables.dist_data)


def _plan(df: pd.DataFrame, cfg: AssayConfig) -> _Plan:
    """Resolve the features, plates, compound and dose columns; warn once about a missing dose or compound."""
    from stratonet.core.tables import feature_columns
    from stratonet.profile.controls import compound_column as find_compound

    feats = feature_columns(df, cfg.features)
    if not feats:
        raise StratoNetError("no numeric feature columns in the profiles")
    if cfg.plate_column in df.columns:
        plates = list(dict.fromkeys(df[cfg.plate_column].astype(str)))
    else:
        plates = ["(one plate)"]
    comp_col = cfg.compound_column or find_compound(df)
    if cfg.compound_column and cfg.compound_column not in df.columns:
        raise StratoNetError(f"compound column '{cfg.compound_column}' not in profiles")
    dose_col, log_dose = default_dose(df, cfg.dose_column, cfg.dose_scale)
    warnings: list[str] = []
    dose_why = ""
    if dose_col is None:
        from stratonet.profile.controls import DOSE_COLUMNS

        dose_why = (f"no dose column found (looked for {', '.join(DOSE_COLUMNS[:4])}, Metadata_dose*, "
                    "Metadata_*concentration*); name it with --dose-column")
        warnings.append(f"dose-response not fitted: {dose_why}")
    elif comp_col is None:  # one compound on the plate (a dose series): one curve over its sample wells
        warnings.append(f"no compound column: one dose curve '(all sample wells)' along {dose_col}; name the "
                        "compound column with --compound-column if the plate holds several compounds")
    readouts = list(cfg.readouts) if cfg.readouts else [ReadoutSpec("nested"), REFERENCE]
    return _Plan(feats, plates, readouts, cfg.controls or Controls(), comp_col, dose_col, log_dose, dose_why,
                 warnings)


def _assay_plate(df: pd.DataFrame, plate: str, cfg: AssayConfig, plan: _Plan, tables: _Tables) -> dict:
    """One plate: its controls, the best single features, every readout, the hits and the dose curves."""
    warnings = plan.warnings
    sub = df if plate == "(one plate)" else df[df[cfg.plate_column].astype(str) == plate]
    sub = sub.reset_index(drop=True)
    where = f" (plate {plate})" if plate != "(one plate)" else ""
    neg, pos = plan.controls.masks(sub, where)
    X, names, n_dropped = _matrix(sub, plan.feats)
    if not names:
        raise StratoNetError(f"plate {plate}: every feature is constant or missing")
    if n_dropped:
        warnings.append(f"plate {plate}: {n_dropped} constant or all-missing features left out")
    n_ctrl = int(neg.sum() + pos.sum())
    if n_ctrl < SMALL_N:
        warnings.append(f"plate {plate}: {int(pos.sum())} poscon + {int(neg.sum())} negcon wells (n < {SMALL_N}): "
                        "control statistics are uncertain; see the Z' bootstrap interval")
    plate_res: dict = {"n_wells": int(len(sub)), "n_pos": int(pos.sum()), "n_neg": int(neg.sum()), "readouts": {}}
    fz = feature_zprimes(X, names, neg, pos)
    plate_res["best_feature"] = {"feature": fz["feature"].iloc[0], "z_prime": float(fz["z_prime"].iloc[0]),
                                 "note": "chosen on the same controls (in-sample)"}
    tables.feat_rows.append(fz.head(50).assign(plate=plate, rank=np.arange(1, min(50, len(fz)) + 1)))
    primary = _score_readouts(X, names, neg, pos, plan.readouts, plate, cfg.seed, plate_res, tables.stat_rows,
                              warnings)
    scores = primary.scores
    hits, info = call_hits(scores, neg, plan.readouts[0].kind in DISTANCES, fdr=cfg.fdr, p_method=cfg.p_method)
    if "warning" in info:
        warnings.append(f"plate {plate}: {info['warning']}")
    plate_res["hits"] = info
    meta = sub[[c for c in sub.columns if str(c).startswith("Metadata_")]].copy()
    role = np.where(neg, "negcon", np.where(pos, "poscon", "sample"))
    wt = pd.concat([meta, pd.DataFrame({"plate": plate, "role": role, "score": scores})], axis=1)
    tables.well_tables.append(pd.concat([wt, hits], axis=1))
    tables.dist_data.append((plate, scores, neg, pos))
    # dose-response per compound (sample wells only; controls give the reference lines)
    dose_cfg = _DoseSetup(plan.dose_col, plan.comp_col, plan.log_dose, cfg.n_boot, cfg.seed, len(plan.plates) > 1,
                          plan.dose_why)
    plate_res["dose"], skipped = _dose_curves(sub, scores, neg, pos, plate, dose_cfg, tables.dose_rows,
                                              tables.curves, warnings)
    if skipped:
        plate_res["dose_skipped"] = skipped
        if skipped != plan.dose_why:  # a missing dose column is said once, above
            warnings.append(f"plate {plate}: dose-response not fitted: {skipped}")
    return plate_res


def _map_activity(df: pd.DataFrame, wells: pd.DataFrame, cfg: AssayConfig, plan: _Plan,
                  result: dict) -> pd.DataFrame | None:
    """copairs' phenotypic-activity mAP beside the hits (``result["map_activity"]``); None when it cannot run."""
    treatment = cfg.treatment or [c for c in (plan.comp_col, plan.dose_col) if c]
    try:
        map_table = hits_vs_map(df, wells, plan.controls, treatment, null_size=cfg.null_size, fdr=cfg.fdr,
                                seed=cfg.seed)
    except StratoNetError as exc:
        result["map_activity"] = None
        plan.warnings.append(f"mAP activity not computed: {exc}")
        return None
    result["map_activity"] = {"mean_map": float(map_table["mean_average_precision"].mean()),
                              "fraction_retrieved": float(map_table["map_retrieved"].astype(float).mean()),
                              "n_treatments": int(len(map_table))}
    return map_table


def _score_readouts(X: np.ndarray, names: list[str], neg: np.ndarray, pos: np.ndarray, readouts: list[ReadoutSpec],
                    plate: str, seed: int, plate_res: dict, stat_rows: list, warnings: list):
    """Score every readout of one plate into ``plate_res``/``stat_rows``; compare each with the first (primary).

    Returns the primary readout's result.
    """
    primary = None
    for spec in readouts:
        rr = score_readout(X, neg, pos, spec, names, seed=seed)
        s = rr.scores
        st = control_statistics(s[pos], s[neg])
        st["z_prime_ci95"] = _bootstrap_zprime(s[pos], s[neg], seed=seed)
        st.update(readout=spec.label, n_features_used=rr.n_features, fitted_on=rr.fitted_on)
        if spec.kind == "feature":
            st["note"] = "one feature, nothing fitted"
        if rr.top_features:
            st["features_used"] = rr.top_features[:50]
        if rr.settings:
            st["settings"] = rr.settings
        plate_res["readouts"][spec.label] = st
        stat_rows.append({"plate": plate, **{k: v for k, v in st.items()
                                             if not isinstance(v, (list, tuple, dict))},
                          "z_prime_lo": st["z_prime_ci95"][0], "z_prime_hi": st["z_prime_ci95"][1]})
        if np.isfinite(st["z_prime"]) and st["z_prime"] < 0:
            warnings.append(f"plate {plate}, readout {spec.label}: Z' = {st['z_prime']:.2f} < 0, the controls "
                            "overlap")
        if primary is None:
            primary = rr
        elif spec.kind != "feature":
            agree = readout_agreement(primary.scores, rr.scores, neg, pos, seed=seed)
            agree["readouts"] = [readouts[0].label, spec.label]
            plate_res.setdefault("readout_agreement", []).append(agree)
            if agree["disagree"]:
                lo, hi = agree["difference_ci95"]
                warnings.append(f"plate {plate}: readouts disagree: Z' {readouts[0].label} "
                                f"{plate_res['readouts'][readouts[0].label]['z_prime']:.2f} vs {spec.label} "
                                f"{st['z_prime']:.2f} (difference 95% CI [{lo:.2f}, {hi:.2f}] excludes 0): the "
                                "answer depends on the readout; quote both")
    return primary


@dataclass(frozen=True)
class _DoseSetup:
    """How the dose curves of a plate are fitted (see :func:`_dose_curves`)."""

    dose_col: str | None
    comp_col: str | None
    log_dose: bool
    n_boot: int
    seed: int
    many_plates: bool
    missing_why: str


def _dose_curves(sub: pd.DataFrame, scores: np.ndarray, neg: np.ndarray, pos: np.ndarray, plate: str,
                 cfg: _DoseSetup, dose_rows: list, curves: list, warnings: list) -> tuple[dict, str | None]:
    """4PL fits per compound of one plate's sample wells; returns them and why none could run (or None).

    Without a compound column all sample wells are one series (a one-compound plate needs none).
    """
    samples = ~neg & ~pos
    if not cfg.dose_col:
        return {}, cfg.missing_why
    if not samples.any():
        return {}, "no sample wells besides the controls"
    if cfg.comp_col:
        groups = sub[samples].groupby(sub.loc[samples, cfg.comp_col].astype(str)).groups.items()
    else:
        groups = [("(all sample wells)", sub.index[samples])]
    out: dict = {}
    too_few: list[str] = []
    for comp, idx in groups:
        rows = np.asarray(list(idx))
        x = pd.to_numeric(sub.loc[rows, cfg.dose_col], errors="coerce").to_numpy(dtype=float)
        y = scores[rows]
        fit = fit_4pl(x, y, log_dose=cfg.log_dose, n_boot=cfg.n_boot, seed=cfg.seed)
        rho = _spearman(x, y)
        dose_rows.append({"plate": plate, "compound": comp, **fit.as_row(), "spearman_dose": rho})
        out[comp] = {"status": fit.status, "note": fit.note, "ec50": _num(fit.ec50),
                     "ec50_ci95": [_num(fit.ec50_lo), _num(fit.ec50_hi)], "hill": _num(fit.hill),
                     "top": _num(fit.top), "bottom": _num(fit.bottom), "n_wells": fit.n_wells,
                     "n_doses": fit.n_doses, "spearman_dose": _num(rho)}
        if fit.status == "failed" and fit.n_doses < 4:
            too_few.append(comp)
        elif fit.status != "ok":
            warnings.append(f"plate {plate}, compound {comp}: dose fit {fit.status} ({fit.note})")
        curves.append({"name": f"{comp} ({plate})" if cfg.many_plates else str(comp), "x": x, "y": y, "fit": fit,
                       "log_dose": cfg.log_dose, "dose_label": cfg.dose_col,
                       "reference": {"negcon median": float(np.median(scores[neg])),
                                     "poscon median": float(np.median(scores[pos]))}})
    if too_few:
        warnings.append(f"plate {plate}: no dose curve for {len(too_few)} compound(s) with fewer than 4 "
                        f"doses ({', '.join(too_few[:5])}{', ...' if len(too_few) > 5 else ''})")
    return out, None


def _num(v: float) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or len(np.unique(x[ok])) < 2:
        return float("nan")
    return float(spearmanr(x[ok], y[ok]).statistic)


def _summary(result: dict) -> dict:
    """Headline numbers across plates: median Z' per readout, the best feature, dose fits, hits."""
    plates = result["plates"].values()
    out: dict = {"z_prime_median": {}}
    for label in result["readouts"]:
        z = [p["readouts"][label]["z_prime"] for p in plates]
        out["z_prime_median"][label] = _num(float(np.nanmedian(z))) if np.isfinite(z).any() else None
    out["n_hits"] = int(sum(p["hits"]["n_hits"] for p in plates))
    out["n_tested"] = int(sum(p["hits"]["n_tested"] for p in plates))
    out["dose_fits"] = {s: sum(1 for p in plates for d in p["dose"].values() if d["status"] == s)
                        for s in ("ok", "flat", "ec50_outside_range", "failed")}
    out["readouts_disagree"] = sorted({a["readouts"][1] for p in plates for a in p.get("readout_agreement", [])
                                       if a["disagree"]})
    skipped = {plate: p["dose_skipped"] for plate, p in result["plates"].items() if p.get("dose_skipped")}
    if skipped:
        out["dose_skipped"] = skipped
    return out


def hits_vs_map(df: pd.DataFrame, wells: pd.DataFrame, controls: Controls, treatment: Sequence[str],
                null_size: int = 10000, fdr: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """Per treatment: wells, hits and median activity next to copairs' phenotypic-activity mAP and its q-value.

    The mAP uses the same negcon wells (``controls``) and the profile features; see
    :func:`stratonet.evaluate.retrieval.map_scores`.
    """
    from stratonet.evaluate.retrieval import map_scores, treatment_key

    tcols = [c for c in treatment if c in df.columns]
    if not tcols:
        raise StratoNetError("no treatment column for mAP (set --treatment)")
    data = df.reset_index(drop=True).copy()
    neg = data[controls.column].astype(str).str.strip().eq(str(controls.negcon)).to_numpy()
    data["Metadata_control_type"] = np.where(neg, "negcon", "trt")
    feats = [c for c in data.columns if not str(c).startswith("Metadata_")]
    from stratonet.evaluate._common import clean_matrix

    X, names = clean_matrix(data, feats)
    data = pd.concat([data[[c for c in data.columns if str(c).startswith("Metadata_")]],
                      pd.DataFrame(X, columns=names)], axis=1)
    _, m = map_scores(data, names, kind="activity", treatment=tcols, null_size=null_size, threshold=fdr, seed=seed)
    wells = wells.reset_index(drop=True).copy()
    wells["Metadata_treatment"] = treatment_key(wells, tcols).to_numpy()
    per = wells[wells["role"] != "negcon"].groupby("Metadata_treatment").agg(
        role=("role", "first"), n_wells=("hit", "size"), n_hits=("hit", "sum"),
        median_activity=("activity", "median"), min_q=("q_value", "min"))
    per["fraction_hits"] = per["n_hits"] / per["n_wells"]
    keep = ["Metadata_treatment", "mean_average_precision", "p_value", "corrected_p_value", "below_corrected_p"]
    out = per.reset_index().merge(m[keep], on="Metadata_treatment", how="left")
    return out.rename(columns={"p_value": "map_p_value", "corrected_p_value": "map_q_value",
                               "below_corrected_p": "map_retrieved"})


def write_assay(res: AssayResult, out_dir: str | Path) -> Path:
    """Save an :class:`AssayResult`: ``metrics.json``, ``control_stats.csv``, ``feature_zprime.csv``,
    ``well_scores.csv``, ``hits.csv``, ``dose_fits.csv``, ``hits_vs_map.csv``, ``control_distributions.png`` and
    ``dose_curves.png``. Returns the folder."""
    from stratonet.core.runinfo import write_json

    out = Path(out_dir)
    result, name = res.metrics, res.metrics["feature_set"]
    out.mkdir(parents=True, exist_ok=True)
    res.control_stats.to_csv(out / "control_stats.csv", index=False)
    res.feature_zprime.to_csv(out / "feature_zprime.csv", index=False)
    res.wells.to_csv(out / "well_scores.csv", index=False)
    res.wells[res.wells["hit"]].to_csv(out / "hits.csv", index=False)
    if not res.dose_fits.empty:
        res.dose_fits.to_csv(out / "dose_fits.csv", index=False)
    if res.hits_vs_map is not None:
        res.hits_vs_map.to_csv(out / "hits_vs_map.csv", index=False)
    plot_control_distributions(res.distributions, out / "control_distributions.png",
                               f"{name}: {result['primary_readout']}")
    if res.curves:
        ref = res.curves[0]["reference"] if len(result["plates"]) == 1 else None
        plot_dose_curves(res.curves[:24], out / "dose_curves.png", f"{name}: {result['primary_readout']}", ref)
    write_json(result, out / "metrics.json")
    return out


def plot_control_distributions(dist_data: list, path: Path, title: str) -> Path:
    """Per plate: the readout of negcon, poscon and sample wells as jittered points with the control means."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(dist_data)
    fig, axes = plt.subplots(1, k, figsize=(max(4.0, 3.6 * k), 3.4), dpi=100, squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (plate, s, neg, pos) in zip(axes[0], dist_data):
        groups = [("negcon", neg, "#2c7fb8"), ("poscon", pos, "#d95f0e"), ("samples", ~neg & ~pos, "#888888")]
        for i, (lbl, m, color) in enumerate(groups):
            v = s[m]
            if not v.size:
                continue
            ax.scatter(i + rng.uniform(-0.15, 0.15, v.size), v, s=12, color=color, alpha=0.8)
            if lbl != "samples":
                ax.hlines([v.mean()], i - 0.3, i + 0.3, color=color)
        z = z_prime(s[pos], s[neg])
        ax.set_xticks(range(3))
        ax.set_xticklabels([f"negcon\nn={int(neg.sum())}", f"poscon\nn={int(pos.sum())}",
                            f"samples\nn={int((~neg & ~pos).sum())}"], fontsize=8)
        ax.set_title(f"{plate}: Z' = {z:.2f}", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
