"""Build the report of a run folder: ``report.html`` (self-contained), ``metrics.json`` and CSV tables.

Section ids are stable (see :data:`SECTIONS`); a part of the run that is absent shows "not run".
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from stratonet import __version__
from stratonet.report import html as H
from stratonet.report import numbers as N
from stratonet.report.assay_section import SECTION as ASSAY_SECTION, assay_metrics, assay_section
from stratonet.report.figures import training_curves_svg
from stratonet.report.collect import (
    RunData, classifier_table, collect_run, resources_table, retrieval_table, training_table, untrained_labels,
)
from stratonet.report.plate_section import classifier_examples, collect_plates, images_section, plates_section, \
    well_numbers
from stratonet.report.viewer import CSS as VIEWER_CSS
from stratonet.core.runinfo import write_json

SECTIONS = [
    ("overview", "Overview"),
    ("plates", "Plate maps and viewer"),
    ("images", "Cell images"),
    ("classifiers", "Classifiers x feature sets"),
    ("confusion", "Confusion matrices"),
    ("embeddings", "UMAP and PCA variance"),
    ("correlation", "Feature-set correlation"),
    ("retrieval", "Retrieval"),
    ("taps", "Tap selection"),
    ASSAY_SECTION,
    ("resources", "Timing and resources"),
    ("training", "Training"),
    ("config", "Run configuration"),
]


#: Sections added by other modules: (id, title, builder(data, out_dir) -> HTML body), drawn before "resources".
#: A builder returns ``H.not_run(...)`` when its part of the run is absent. Add one with :func:`register_section`.
EXTRA_SECTIONS: list[tuple[str, str, Callable[[RunData, Path], str]]] = []
#: Modules imported (when installed) so that they can register their sections.
SECTION_MODULES = ("stratonet.report.assay_section",)


def register_section(sid: str, title: str, builder: Callable[[RunData, Path], str]) -> None:
    """Plug a section into every report (idempotent per id)."""
    EXTRA_SECTIONS[:] = [e for e in EXTRA_SECTIONS if e[0] != sid] + [(sid, title, builder)]


def _all_sections() -> list[tuple[str, str]]:
    import importlib

    for mod in SECTION_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
    at = [sid for sid, _ in SECTIONS].index("resources")
    return SECTIONS[:at] + [(sid, t) for sid, t, _ in EXTRA_SECTIONS] + SECTIONS[at:]


def classifier_figure(table: pd.DataFrame, path: Path) -> Path:
    """Grouped bars of macro F1 and accuracy per classifier and feature set (thesis Fig. 7 / Fig. 9 style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(table["feature_set"]))
    clfs = list(dict.fromkeys(table["classifier"]))
    width = 0.8 / max(1, len(sets))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), dpi=100, sharey=True)
    cmap = plt.get_cmap("tab10")
    for ax, metric, title in ((axes[0], "macro_f1", "macro F1 (test)"), (axes[1], "accuracy", "accuracy (test)")):
        for j, fs in enumerate(sets):
            vals = [table[(table.feature_set == fs) & (table.classifier == c)][metric].astype(float).mean()
                    for c in clfs]
            ax.bar(np.arange(len(clfs)) + (j - (len(sets) - 1) / 2) * width, vals, width, label=fs, color=cmap(j))
        ax.set_xticks(np.arange(len(clfs)))
        ax.set_xticklabels(clfs)
        ax.set_ylim(0, 1.05)
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("score")
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, title="feature set")
    fig.tight_layout()
    fig.savefig(path)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)
    return path


def _pivot(table: pd.DataFrame) -> pd.DataFrame:
    """Classifier rows x feature-set columns, each cell 'F1 x / acc y'."""
    cell = table.assign(cell=[f"F1 {H.fmt(f)} / acc {H.fmt(a)}"
                              for f, a in zip(table["macro_f1"].astype(float), table["accuracy"].astype(float))])
    return cell.pivot_table(index="classifier", columns="feature_set", values="cell", aggfunc="first").reset_index()


def _classifiers_section(data: RunData, out_dir: Path, metrics: dict) -> str:
    tab = classifier_table(data.classify)
    if tab.empty:
        return H.not_run("not run: no evaluate/classify/<feature_set>/metrics.json in this run")
    tab.to_csv(out_dir / "classifiers.csv", index=False)
    fig = classifier_figure(tab, out_dir / "classifiers.png")
    labels = sorted({str(m.get("label")) for m in data.classify.values() if m.get("label")})
    honest = N.classifier_rows(data.classify, data.dirs.get("classify", {}))
    honest.to_csv(out_dir / "classifiers_n.csv", index=False)
    folds = sorted({int(k) for k in honest["cv_folds"].dropna()})
    pooled = honest["cv pooled macro_f1"].notna().any()
    cv_note = (f"Cross-validation ({', '.join(map(str, folds))} folds): the mean and sd of per-fold metrics"
               + ("; 'cv pooled' scores all out-of-fold predictions together (n = every profile once)."
                  if pooled else "; pooled out-of-fold metrics are not in these metrics.json files.")
               if folds else "No cross-validation in this run.")
    return (f'<p>Test-set macro F1 and accuracy per classifier and feature set'
            f'{" (label: " + H.esc(", ".join(labels)) + ")" if labels else ""}. n_test counts the held-out '
            f"samples; 'classes in test' says how many of the trained classes have a test sample. "
            f"{H.esc(cv_note)}</p>"
            + N.small_n_warnings(honest) + N.absent_classes(data.classify, data.dirs.get("classify", {}))
            + H.table(N.drop_unused_cv_columns(honest), text_columns=2, why=N.CLASSIFIER_WHY)
            + H.svg_figure(fig.with_suffix(".svg").read_bytes(), "macro F1 and accuracy per classifier and feature set"
                           " (test set)", 1000)
            + "<details><summary>All metrics (classifiers.csv)</summary>"
            + H.table(tab, text_columns=2, default_why="not in metrics.json") + H.table(_pivot(tab)) + "</details>")


def _confusion_section(data: RunData) -> str:
    items, sizes = [], {}
    for fs, d in data.dirs.get("classify", {}).items():
        for png in sorted(d.glob("confusion_*.png")):
            clf = png.stem.removeprefix("confusion_")
            csv = d / f"confusion_{clf}.csv"
            if csv.exists():
                counts = pd.read_csv(csv, index_col=0)
                counts.columns = counts.columns.astype(str)
                counts.index = counts.index.astype(str)
                sizes[f"{fs}: {clf}"] = int(counts.to_numpy().sum())
                items.append(N.confusion_html(counts, f"{fs}: {clf}"))
            else:
                items.append(H.figure(png, f"{fs}: {clf}", 320))
    if not items:
        return H.not_run("not run: no confusion matrices (evaluate classify)")
    if sizes and max(sizes.values()) < N.SMALL_TEST:  # a matrix of a handful of samples is not worth reading
        return (H.not_run(f"{len(items)} confusion matrices of {max(sizes.values())} test samples or fewer each: too "
                          f"few to read (fewer than {N.SMALL_TEST}); open them below if you must")
                + f"<details><summary>{len(items)} confusion matrices</summary>{H.figures(items)}</details>")
    return H.figures(items)


def _embeddings_section(data: RunData) -> str:
    if not data.dirs.get("embed"):
        return H.not_run("not run: no evaluate/embed/<feature_set>/ in this run")
    rows, parts = [], []
    for fs, d in data.dirs["embed"].items():
        m = data.embed.get(fs, {})
        rows.append({"feature_set": fs, "profiles": m.get("n_profiles"), "features": m.get("n_features"),
                     "colour": m.get("color_by"), "PC1 variance": (m.get("pca") or {}).get("explained_pc1"),
                     "PCs for 90%": (m.get("pca") or {}).get("components_for_90pct"),
                     "silhouette (features)": m.get("silhouette_features"),
                     "silhouette (UMAP)": m.get("silhouette_umap")})
        parts.append(f"<h3>{H.esc(fs)}</h3>" + H.figures([H.figure(d / "umap.png", f"UMAP: {fs}", 520),
                                                          H.figure(d / "pca_variance.png", f"PCA variance: {fs}",
                                                                   480)]))
    return H.table(pd.DataFrame(rows)) + "".join(parts)


def _correlation_section(data: RunData) -> str:
    if not data.dirs.get("compare"):
        return H.not_run("not run: no evaluate/compare/<A>_vs_<B>/ in this run")
    rows, figs = [], []
    for name, d in data.dirs["compare"].items():
        m = data.compare.get(name, {})
        rows.append({"comparison": name, "label": m.get("label"), "samples": m.get("n_samples"), "top": m.get("top"),
                     "mean |r|": m.get("mean_abs_r"), "median best |r| (A)": m.get("median_best_abs_r_a"),
                     "median best |r| (B)": m.get("median_best_abs_r_b")})
        if (d / "correlation.csv").exists():
            figs.append(N.correlation_html(pd.read_csv(d / "correlation.csv", index_col=0),
                                           f"correlation of top features: {name}"))
        else:
            figs.append(H.figure(d / "correlation.png", f"correlation of top features: {name}", 760))
    return H.table(pd.DataFrame(rows)) + H.figures(figs)


def _retrieval_section(data: RunData, out_dir: Path, assay: dict | None = None) -> str:
    tab = retrieval_table(data.retrieval)
    if tab.empty:
        with_map = sorted(k for k, m in (assay or {}).items() if isinstance(m, dict) and m.get("map_activity"))
        also = (f" (evaluate assay computed the phenotypic-activity mAP of {', '.join(with_map)}: see the assay "
                "section)" if with_map else "")
        return H.not_run(f"not run: no evaluate/retrieval/<feature_set>/metrics.json in this run{also}")
    tab.to_csv(out_dir / "retrieval.csv", index=False)
    for col, key in (("nsc_accuracy", "nsc"), ("nscb_accuracy", "nscb")):
        tab[f"why:{col}"] = [(m.get("skipped") or {}).get(key) or ("no profile evaluable (a compound alone in its MoA"
                                                                     " or batch)" if m.get(f"{key}_n") == 0 else
                                                                     "not in metrics.json")
                             for m in data.retrieval.values()]
    for col, key in (("map_activity", "activity"), ("map_consistency", "consistency")):
        tab[f"why:{col}"] = [(m.get("skipped") or {}).get(key) or "not in metrics.json" for m in data.retrieval.values()]
    for col in ("fraction_retrieved_activity", "fraction_retrieved_consistency"):
        tab[f"why:{col}"] = tab[f"why:map_{col.rsplit('_', 1)[1]}"]
    tab["n (NSC)"] = [m.get("nsc_n") for m in data.retrieval.values()]
    tab["why:n (NSC)"] = "not in metrics.json"
    tab["groups (activity)"] = [(m.get("map_activity") or {}).get("n_groups") for m in data.retrieval.values()]
    tab["why:groups (activity)"] = tab["why:map_activity"]
    return ("<p>mAP of phenotypic activity (replicates vs negative controls) and consistency (same MoA), fraction "
            "retrieved at BH-corrected p &lt; 0.05; not-same-compound (NSC) and not-same-compound-or-batch (NSCB) "
            "1-NN MoA accuracy.</p>" + H.table(tab.drop(columns=["not computed"])))


def _taps_section(data: RunData, out_dir: Path) -> str:
    if not data.dirs.get("taps"):
        return H.not_run("not run: no evaluate/taps/<model>/ in this run")
    parts, tables = [], []
    for model, d in data.dirs["taps"].items():
        t = pd.read_csv(d / "tap_selection.csv")
        tables.append(t.assign(model=model))
        comp = data.taps.get(model, {}).get("comparison", "")
        parts.append(f"<h3>{H.esc(model)}</h3><p class=\"muted\">{H.esc(comp)}</p>" + H.table(t)
                     + H.figure(d / "tap_selection.png", f"tap selection: {model}", 520))
    pd.concat(tables).to_csv(out_dir / "taps.csv", index=False)
    return "".join(parts)


def _resources_section(data: RunData, out_dir: Path) -> str:
    tab = resources_table(data.manifests)
    if tab.empty:
        return H.not_run("not run: no *.manifest.json (extract) in this run")
    tab.to_csv(out_dir / "resources.csv", index=False)
    return ("<p>From the extraction manifests: wall time, throughput, CPU % of this run's processes (100 = every core "
            "of the machine busy with this run), the whole machine's CPU % (other users included, when recorded) "
            "and memory %.</p>") + \
        H.table(tab)


def _training_section(data: RunData, out_dir: Path) -> str:
    if not data.dirs.get("training"):
        return H.not_run("not run: no train/<name>/ in this run")
    tab = training_table(data.training)
    tab.to_csv(out_dir / "training.csv", index=False)
    small_n = (N.small_n_warnings(tab.rename(columns={"name": "feature_set", "n_val": "n_test"}))
               .replace("Test sets", "Validation sets") if "n_val" in tab else "")  # none for self-supervised runs
    parts = [small_n, H.table(tab, why={"n_val": "not in metrics.json", "classes in val": "not in metrics.json"})]
    for name, d in data.dirs["training"].items():
        parts.append(f"<h3>{H.esc(name)}</h3>")
        svg = None
        if (d / "epochs.csv").exists():
            epochs = pd.read_csv(d / "epochs.csv")
            svg = training_curves_svg(epochs, name)
            parts.append(f"<details><summary>Per-epoch table ({len(epochs)} epochs)</summary>"
                         f"{H.table(epochs, text_columns=0)}</details>")
        figs = [H.svg_figure(svg, f"{name}: training curves (loss and accuracy per epoch)", 860)] if svg else []
        figs += [H.figure(d / f, f"{name}: {f[:-4]}", 460) for f in ("curves.png", "confusion.png")
                 if (d / f).exists() and not (svg and f == "curves.png")]
        parts.append(H.figures(figs))
    return "".join(parts)


def _config_section(data: RunData) -> str:
    if not data.configs:
        return H.not_run("not run: no *.config.yaml in this run")
    return "".join(f"<details><summary>{H.esc(rel)}</summary><pre>{H.esc(text)}</pre></details>"
                   for rel, text in data.configs.items())


def _overview(data: RunData, status: dict[str, str], assay: dict | None = None) -> str:
    shown = ("feature_set", "model", "weights", "weights_trained_on", "channels", "error")
    prov_rows = [{"file": k, **data.table_shapes.get(k, {}),
                  **{kk: (", ".join(map(str, v[kk])) if isinstance(v[kk], list) else str(v[kk]))
                     for kk in shown if kk in v}}
                 for k, v in data.table_provenance.items()]
    assay = assay or {}
    sets = sorted(set(data.classify) | set(data.retrieval) | set(data.embed) | set(assay))
    by_set = {s: [k for k, d in (("classify", data.classify), ("retrieval", data.retrieval), ("embed", data.embed),
                                 ("assay", assay)) if s in d] for s in sets}
    listed = ", ".join(f"{s} ({', '.join(by_set[s])})" if by_set[s] else s for s in sets)
    st = pd.DataFrame([{"section": t, "status": status.get(sid, "")} for sid, t in _all_sections()
                       if sid != "overview"])
    return (f"<p>Run folder: <code>{H.esc(data.run.resolve())}</code>. Feature sets evaluated: "
            f"{H.esc(listed or 'none')}.</p>" + H.table(st, text_columns=2)
            + ("<h3>Feature and profile tables</h3>" + H.table(pd.DataFrame(prov_rows).rename(
                columns={"weights_trained_on": "weights trained on"})) if prov_rows else ""))


def _status(body: str) -> str:
    """'not run' for a section that is only a note; 'ok' once it shows anything (a figure, a table, a map)."""
    shows = any(tag in body for tag in ("<figure", "<table", "<svg", "<img"))
    return "not run" if body.startswith('<p class="notrun">') and not shows else "ok"


def _plates_summary(plates) -> dict:
    """Per plate: wells, empty / failed counts and the notes the plate section printed (machine-readable)."""
    if plates is None or plates.wells is None:
        return {}
    out = {}
    for plate, w in plates.wells.groupby("Metadata_Plate", sort=False):
        out[str(plate)] = {"wells": int(len(w)), "sites": int(w["sites"].sum()),
                           "failed_sites": int(w["failed_sites"].sum()),
                           "failed_wells": int((w["failed_sites"] >= w["sites"]).sum()),
                           "zero_cell_wells": int((w["cells"] == 0).sum()),
                           "thumbnail_px": plates.thumb_px, "activity_feature_set": plates.activity_set}
    out["notes"] = list(plates.notes)
    return out


def _banner(labels: list[str]) -> str:
    if not labels:
        return ""
    items = "".join(f"<li>{H.esc(x)}</li>" for x in labels)
    return ('<div id="untrained-warning" class="banner" role="alert">Warning: some features come from an '
            f"untrained network (random weights); their results are a baseline, not a trained model's.<ul>{items}</ul>"
            "</div>")


def build_report(run: str | Path, out: str | Path | None = None, title: str | None = None,
                 thumb_px: int | None = None, controls=None) -> Path:
    """Write the HTML report of ``run`` to ``out`` (default ``<run>/report/report.html``) with metrics.json and CSVs.

    ``thumb_px`` sets the plate viewer's thumbnail edge (default: 128 px up to 400 sites, smaller beyond).
    ``controls`` (:class:`stratonet.core.controlnames.ControlNames`) names the index's controls for the plate maps.

    Returns
    -------
    Path of the HTML file.
    """
    run = Path(run)
    out = Path(out) if out else run / "report" / "report.html"
    out_dir = out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    data = collect_run(run, exclude=out_dir)
    labels = untrained_labels(data)
    metrics: dict = {}
    plates = collect_plates(run, thumb_px=thumb_px, controls=controls)
    if plates is not None:
        plates.wells = well_numbers(plates, run, data.retrieval)
        plates.wells.to_csv(out_dir / "wells.csv", index=False)
    bodies = {
        "plates": plates_section(plates, run),
        "images": images_section(plates, run) + classifier_examples(plates, data.dirs.get("classify", {})),
        "classifiers": _classifiers_section(data, out_dir, metrics),
        "confusion": _confusion_section(data),
        "embeddings": _embeddings_section(data),
        "correlation": _correlation_section(data),
        "retrieval": _retrieval_section(data, out_dir, assay_metrics(run)),
        "taps": _taps_section(data, out_dir),
        "assay": assay_section(run, out_dir),
        "resources": _resources_section(data, out_dir),
        "training": _training_section(data, out_dir),
        "config": _config_section(data),
        **{sid: builder(data, out_dir) for sid, _, builder in EXTRA_SECTIONS},
    }
    status = {sid: _status(body) for sid, body in bodies.items()}
    bodies["overview"] = _overview(data, status, assay_metrics(run))
    order = _all_sections()
    sections = [H.section(sid, t, bodies[sid]) for sid, t in order]
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    doc = H.page(title or f"StratoNet report: {run.resolve().name}",
                 f"stratonet {__version__}, generated {now}", _banner(labels), order, sections, extra_css=VIEWER_CSS)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(out)
    write_json({
        "run": str(run.resolve()), "generated": now, "stratonet_version": __version__,
        "untrained": labels, "sections": status,
        "tables": data.table_shapes,
        "provenance": {**data.table_provenance,
                       **{f"classify/{k}": v.get("provenance") for k, v in data.classify.items()}},
        "classify": data.classify, "retrieval": data.retrieval, "embed": data.embed, "compare": data.compare,
        "taps": data.taps, "training": data.training, "assay": assay_metrics(run),
        "resources": resources_table(data.manifests).to_dict(orient="records"),
        "plates": _plates_summary(plates),
    }, out_dir / "metrics.json")
    return out
