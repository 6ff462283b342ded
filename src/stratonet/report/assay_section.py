"""The report's assay section: Z' per plate and feature set, control readout distributions, dose curves, hits.

It reads ``<run>/evaluate/assay/<feature_set>/`` (written by ``stratonet evaluate assay``) on its own, so the rest of
the report needs only a one-line hook (:func:`assay_section`, :func:`assay_metrics`).

Hits on a plate map: ``well_scores.csv`` has one row per well with ``Metadata_Plate``, ``Metadata_Well``, ``role``
(negcon / poscon / sample), ``score``, ``activity``, ``q_value`` and ``hit``; a plate-map view can colour wells by
``activity`` and outline ``hit`` wells (see :func:`hits_for_platemap`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from stratonet.report import html as H
from stratonet.report import numbers as N

SECTION = ("assay", "Assay quality, dose-response and hits")


def assay_dirs(run: str | Path) -> dict[str, Path]:
    """Feature set -> its ``evaluate/assay/<set>`` folder (those holding a metrics.json)."""
    root = Path(run) / "evaluate" / "assay"
    if not root.is_dir():
        return {}
    return {d.name: d for d in sorted(root.iterdir()) if (d / "metrics.json").is_file()}


def assay_metrics(run: str | Path) -> dict[str, dict]:
    """The metrics.json of every assay evaluation of the run, keyed by feature set (unreadable ones skipped)."""
    out = {}
    for name, d in assay_dirs(run).items():
        try:
            out[name] = json.loads((d / "metrics.json").read_text())
        except (OSError, ValueError):
            out[name] = {"error": "unreadable metrics.json"}
    return out


def hits_for_platemap(run: str | Path) -> pd.DataFrame:
    """All feature sets' per-well assay results in one table (``feature_set`` column added) for a plate map."""
    frames = [pd.read_csv(d / "well_scores.csv").assign(feature_set=name)
              for name, d in assay_dirs(run).items() if (d / "well_scores.csv").exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def zprime_table(metrics: dict[str, dict]) -> pd.DataFrame:
    """One row per feature set, plate and readout: n, Z' (with its bootstrap 95 % interval), robust Z', SSMD, S/B,
    CV, and the best single feature of the plate."""
    rows = []
    for fs, m in metrics.items():
        for plate, p in (m.get("plates") or {}).items():
            for label, st in (p.get("readouts") or {}).items():
                lo, hi = st.get("z_prime_ci95") or (None, None)
                rows.append({"feature_set": fs, "plate": plate, "readout": label, "n_pos": st.get("n_pos"),
                             "n_neg": st.get("n_neg"), "Z'": st.get("z_prime"), "Z' 95% lo": lo, "Z' 95% hi": hi,
                             "robust Z'": st.get("robust_z_prime"), "SSMD": st.get("ssmd"),
                             "S/B": st.get("signal_to_background"), "CV pos": st.get("cv_pos"),
                             "CV neg": st.get("cv_neg")})
            bf = p.get("best_feature") or {}
            if bf:
                rows.append({"feature_set": fs, "plate": plate, "readout": f"best feature (in-sample): {bf['feature']}",
                             "n_pos": p.get("n_pos"), "n_neg": p.get("n_neg"), "Z'": bf.get("z_prime")})
    return pd.DataFrame(rows)


def assay_section(run: str | Path, out_dir: Path | None = None) -> str:
    """HTML body of the assay section ('not run' note when the run has no assay evaluation)."""
    dirs = assay_dirs(run)
    if not dirs:
        return H.not_run("not run: no evaluate/assay/<feature_set>/metrics.json in this run (stratonet evaluate assay)")
    metrics = assay_metrics(run)
    zt = zprime_table(metrics)
    if out_dir is not None and not zt.empty:
        zt.to_csv(Path(out_dir) / "assay_zprime.csv", index=False)
    parts = ["<p>Z'-factor = 1 - 3 (sd<sub>pos</sub> + sd<sub>neg</sub>) / |mean<sub>pos</sub> - mean<sub>neg</sub>| "
             "between the control wells, on readouts scored out of sample (a well never scores itself). Z' &gt; 0.5 "
             "is an excellent assay. The best single feature is chosen on the same controls, so its Z' is "
             "optimistic.</p>", H.table(zt, text_columns=3)]
    for fs, d in dirs.items():
        m = metrics.get(fs, {})
        parts.append(f"<h3>{H.esc(fs)}: readout {H.esc(m.get('primary_readout', ''))}</h3>")
        warns = m.get("warnings") or []
        if warns:
            parts.append('<ul class="muted">' + "".join(f"<li>{H.esc(w)}</li>" for w in warns[:12]) + "</ul>")
        parts.append(_notices(m))
        parts.append(H.figures([H.figure(d / "control_distributions.png", f"{fs}: control readout distributions", 520),
                                _dose_figure(d, m, fs)]))
        if (d / "dose_fits.csv").exists():
            parts.append("<h4>Dose-response fits</h4>" + H.table(_dose_table(pd.read_csv(d / "dose_fits.csv"), m),
                                                                  text_columns=3))
        if (d / "hits.csv").exists():
            hits = pd.read_csv(d / "hits.csv")
            keep = [c for c in ("plate", "Metadata_Well", "role", "score", "activity", "p_value", "q_value")
                    if c in hits.columns]
            h = m.get("plates") or {}
            counts = ", ".join(f"{pl}: {p['hits']['n_hits']} of {p['hits']['n_tested']}" for pl, p in h.items())
            parts.append(f"<h4>Hits (FDR {H.esc(m.get('fdr'))}, {H.esc(m.get('p_method'))} p-values vs negcon; "
                         f"{H.esc(counts)})</h4>" + (H.table(hits[keep], text_columns=3, max_rows=60)
                                                     if len(hits) else H.not_run("no hits")))
        if (d / "hits_vs_map.csv").exists():
            parts.append("<h4>Hits beside copairs phenotypic-activity mAP, per treatment</h4>"
                         + H.table(_treatment_labels(pd.read_csv(d / "hits_vs_map.csv"), m), text_columns=2))
    return "".join(parts)


def _notices(m: dict) -> str:
    """Dose curves skipped (and why) and readouts that disagree, when the metrics carry them (older or newer
    versions of evaluate assay may not)."""
    items = []
    for plate, p in (m.get("plates") or {}).items():
        if isinstance(p, dict) and p.get("dose_skipped"):
            items.append(f"plate {plate}: no dose-response curve ({p['dose_skipped']})")
    for where, holder in [("", m)] + [(f"plate {k}: ", v) for k, v in (m.get("plates") or {}).items()
                                      if isinstance(v, dict)]:
        for k, v in holder.items():
            if "disagree" in str(k).lower() and v not in (None, "", [], {}):
                text = v if isinstance(v, str) else json.dumps(v, default=str)[:400]
                items.append(f"{where}{k.replace('_', ' ')}: {text}")
    return ('<ul class="warnlist">' + "".join(f"<li>{H.esc(i)}</li>" for i in items) + "</ul>") if items else ""


def _dose_figure(d: Path, m: dict, fs: str) -> str:
    """The dose-response panels as SVG redrawn from well_scores.csv and dose_fits.csv (dose units on the axis);
    evaluate's PNG when the tables do not allow it."""
    from stratonet.report.figures import dose_curves_svg

    if not (d / "dose_fits.csv").exists():
        skipped = "; ".join(str(p.get("dose_skipped")) for p in (m.get("plates") or {}).values()
                            if isinstance(p, dict) and p.get("dose_skipped"))
        return H.not_run(f"no dose curves ({skipped or 'no dose_fits.csv'})")
    dose, comp = m.get("dose_column"), m.get("compound_column")
    svg = None
    if dose and comp and (d / "well_scores.csv").exists():
        svg = dose_curves_svg(pd.read_csv(d / "well_scores.csv"), pd.read_csv(d / "dose_fits.csv"), dose, comp,
                              log_dose=m.get("dose_scale") == "log", title=f"{fs}: {m.get('primary_readout', '')}")
    if svg is not None:
        panels = min(3, len(pd.read_csv(d / "dose_fits.csv")))
        return H.svg_figure(svg, f"{fs}: dose-response (4PL fit; dashed: EC50; dotted: control medians)",
                            460 * max(1, panels))
    return H.figure(d / "dose_curves.png", f"{fs}: dose-response (4PL)", 760)


def _dose_table(dose: pd.DataFrame, m: dict) -> pd.DataFrame:
    """The fit table with the dose unit in the EC50 headers."""
    unit = N.dose_unit(m.get("dose_column"))
    cols = [c for c in ("plate", "compound", "status", "ec50", "ec50_lo", "ec50_hi", "hill", "top", "bottom",
                        "r2", "spearman_dose", "n_wells", "n_doses", "note") if c in dose.columns]
    out = dose[cols]
    if "note" in out.columns:
        out = out.assign(**{"why:note": "none: the fit converged"})
    names = {"ec50": f"EC50 ({unit})", "ec50_lo": f"EC50 95% lo ({unit})", "ec50_hi": f"EC50 95% hi ({unit})"}
    return out.rename(columns=names)


def _treatment_labels(tab: pd.DataFrame, m: dict) -> pd.DataFrame:
    """``PI3Ki@3`` keys as ``PI3Ki @ dose index 3`` / ``thapsigargin @ 0.027 µM``, sorted by compound and dose."""
    if "Metadata_treatment" not in tab.columns:
        return tab
    unit = N.dose_unit(m.get("dose_column"))
    has_dose = bool(m.get("dose_column"))
    tab = tab.iloc[[i for i, _ in sorted(enumerate(tab["Metadata_treatment"]),
                                         key=lambda x: N.treatment_sort_key(x[1]))]]
    labels = [N.treatment_label(*(N.split_treatment_key(k) if has_dose else (k, None)), unit)
              for k in tab["Metadata_treatment"]]
    return tab.drop(columns=["Metadata_treatment"]).assign(treatment=labels)[
        ["treatment"] + [c for c in tab.columns if c != "Metadata_treatment"]]
