"""`stratonet evaluate`: classifiers, retrieval, embeddings, feature-set comparison."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available, start_run
from stratonet.cli.controls import apply_controls, control_names, control_options


@click.group("evaluate")
def evaluate() -> None:
    """Evaluate profiles: classify, retrieval, embed, compare, taps, assay."""


def _load(profiles: Path):
    from stratonet.core.tables import read_provenance, read_table

    return read_table(profiles), read_provenance(profiles)


def _profiles_run_name(kind: str, name_default: str = "the profile file's stem"):
    """The PROFILES argument, ``--out`` (results in ``<RUN>/evaluate/<kind>/<NAME>/``) and ``--name`` of classify,
    retrieval and assay, in this order."""
    def decorate(fn):
        fn = click.option("--name", default=None, help=f"Feature-set name (default: {name_default}).")(fn)
        fn = click.option("--out", "-o", "run", type=click.Path(path_type=Path), default=Path("run"),
                          show_default=True, help=f"Run folder; results go to <RUN>/evaluate/{kind}/<NAME>/.")(fn)
        return click.argument("profiles", type=click.Path(path_type=Path))(fn)
    return decorate


@evaluate.command("classify")
@_profiles_run_name("classify")
@click.option("--label", default="Metadata_moa", show_default=True, help="Class column.")
@click.option("--classifiers", default="svm,rf,mlp,logreg", show_default=True,
              help="Comma-separated: svm (RBF), rf, mlp, logreg.")
@click.option("--n-train", type=int, default=3000, show_default=True,
              help="Size of the class-balanced training sample (with replacement only for classes too small).")
@click.option("--test-size", type=float, default=0.2, show_default=True, help="Held-out fraction.")
@click.option("--cv", type=int, default=10, show_default=True, help="Cross-validation folds (0: none).")
@click.option("--group-by", default=None, help="Keep groups of this column on one side of every split, "
              "e.g. Metadata_Plate or a compound column.")
@click.option("--exclude-class", multiple=True, help="Drop this class first (repeatable).")
@click.option("--rf-trees", type=int, default=100, show_default=True)
@click.option("--permutation-features", type=int, default=100, show_default=True,
              help="Permutation importance for this many top RF features (0: all).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--n-jobs", type=int, default=2, show_default=True)
@click.option("--impute", type=click.Choice(["none", "median", "mean"]), default="none", show_default=True,
              help="Fill missing feature values from each training split (none: refuse features with NaN).")
def classify(profiles: Path, run: Path, name: str | None, label: str, classifiers: str, n_train: int,
             test_size: float, cv: int, group_by: str | None, exclude_class: tuple[str, ...], rf_trees: int,
             permutation_features: int, seed: int, n_jobs: int, impute: str) -> None:
    """SVM, random forest, MLP and logistic regression with balanced training sampling and k-fold CV."""
    from stratonet.evaluate.classify import evaluate_classifiers, write_classify
    from stratonet.evaluate.config import ClassifyConfig
    from stratonet.core.progress import console

    name = name or profiles.name.split(".")[0]
    out = run / "evaluate" / "classify" / name
    start_run(out, "classify")
    df, prov = _load(profiles)
    cfg = ClassifyConfig(label=label, classifiers=[c.strip() for c in classifiers.split(",") if c.strip()],
                         n_train=n_train, test_size=test_size, cv=cv, group_by=group_by, exclude_class=exclude_class,
                         seed=seed, n_jobs=n_jobs, rf_trees=rf_trees, permutation_features=permutation_features,
                         impute=impute)
    found = evaluate_classifiers(df, cfg, name=name, provenance=prov)
    write_classify(found, out)
    res = found.metrics
    if res["protocol"].get("n_missing_values_imputed"):
        console.print(f"  {res['protocol']['n_missing_values_imputed']} missing value(s) imputed ({impute}, "
                      "fitted on training rows)", highlight=False)
    for clf, m in res["classifiers"].items():
        cvtxt = (f", CV pooled accuracy {m['cv_pooled_accuracy']:.3f}, macro F1 pooled {m['cv_pooled_macro_f1']:.3f} "
                 f"/ fold mean {m['cv_fold_mean_macro_f1']:.3f} +- {m['cv_fold_sd_macro_f1']:.3f}" if "cv" in m else "")
        console.print(f"  {clf}: accuracy {m['accuracy']:.3f}, macro F1 {m['macro_f1']:.3f}{cvtxt}", highlight=False)
    if res["protocol"].get("n_train_repeated_rows"):
        p = res["protocol"]
        console.print(f"[yellow]note:[/] --n-train {n_train}: the balanced training sample repeats "
                      f"{p['n_train_repeated_rows']} of its {p['n_train_balanced']} rows (drawn with replacement from "
                      f"{p['n_train_rows_available']} training rows)", highlight=False)
    small = res["protocol"].get("classes_smaller_than_folds") or {}
    if small:
        shown = ", ".join(f"{c} ({n})" for c, n in list(small.items())[:10])
        shown += f" and {len(small) - 10} more" if len(small) > 10 else ""
        console.print(f"[yellow]warning:[/] {len(small)} class(es) have fewer rows than the {cv} CV folds: {shown}",
                      highlight=False)
    lacking = res["protocol"].get("cv_folds_lacking_classes") or []
    if lacking:
        console.print(f"[yellow]warning:[/] {len(lacking)} of {res['protocol']['cv_folds']} CV folds lack a class "
                      "in their test part; quote the pooled out-of-fold figures", highlight=False)
    console.print(f"classification results: {out}", highlight=False)


@evaluate.command("retrieval")
@_profiles_run_name("retrieval")
@click.option("--label", default="Metadata_moa", show_default=True, help="Class column for consistency and NSC.")
@click.option("--treatment", multiple=True,
              help="Treatment column(s) (repeatable; default compound + concentration columns found).")
@click.option("--batch", default=None, help="Batch column for NSCB (default Metadata_Batch, else Metadata_Plate).")
@click.option("--metric", type=click.Choice(["cosine", "correlation", "euclidean"]), default="cosine",
              show_default=True)
@click.option("--null-size", type=int, default=10000, show_default=True, help="copairs null distribution size.")
@click.option("--threshold", type=float, default=0.05, show_default=True, help="BH-corrected significance level.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--impute", type=click.Choice(["none", "median", "mean"]), default="none", show_default=True,
              help="Fill missing feature values with the column's median or mean (none: refuse features with NaN).")
@control_options
def retrieval(profiles: Path, run: Path, name: str | None, label: str, treatment: tuple[str, ...],
              batch: str | None, metric: str, null_size: int, threshold: float, seed: int, impute: str,
              control_column: str, negcon: str | None, poscon: str | None, controls_file: Path | None) -> None:
    """mAP (copairs) and NSC / NSCB 1-NN accuracy."""
    from stratonet.evaluate.config import RetrievalConfig
    from stratonet.evaluate.retrieval import evaluate_retrieval, write_retrieval
    from stratonet.core.progress import console

    name = name or profiles.name.split(".")[0]
    out = run / "evaluate" / "retrieval" / name
    start_run(out, "retrieval")
    df, prov = _load(profiles)
    df = apply_controls(df, control_names(control_column, negcon, poscon, controls_file), str(profiles))
    if impute != "none":
        from stratonet.core.tables import feature_columns

        feats = feature_columns(df)
        n_missing = int(df[feats].isna().to_numpy().sum())
        if n_missing:
            fill = df[feats].median() if impute == "median" else df[feats].mean()
            df = df.assign(**{f: df[f].fillna(fill[f]) for f in feats if df[f].isna().any()})
            console.print(f"  {n_missing} missing value(s) imputed with the column {impute}", highlight=False)
    cfg = RetrievalConfig(label=label, treatment=list(treatment) or None, batch=batch, metric=metric,
                          null_size=null_size, threshold=threshold, seed=seed)
    found = evaluate_retrieval(df, cfg, name=name, provenance=prov)
    write_retrieval(found, out)
    res = found.metrics
    for kind in ("map_activity", "map_consistency"):
        m = res.get(kind)
        if m:
            console.print(f"  {kind}: mAP {m['mean_map']:.3f}, retrieved {m['fraction_retrieved']:.3f}", highlight=False)
    for k in ("nsc_accuracy", "nscb_accuracy"):
        if res.get(k) is not None:
            console.print(f"  {k}: {res[k]:.3f}", highlight=False)
    _say_retrieval_coverage(df, res, console)
    console.print(f"retrieval results: {out}", highlight=False)
    if not any(res.get(k) for k in ("map_activity", "map_consistency", "nsc_accuracy", "nscb_accuracy")):
        from stratonet.core.errors import StratoNetError

        why = "; ".join(f"{k}: {v}" for k, v in res["skipped"].items()) or "no evaluable profile"
        raise StratoNetError(f"evaluate retrieval scored no metric ({why}); mAP activity needs replicate wells per "
                             "--treatment and negcon wells (--negcon VALUE), consistency and NSC a class column "
                             f"(--label COLUMN; {label} is absent or has one class per treatment)")


def _say_retrieval_coverage(df, res: dict, console) -> None:
    """How many treatments the retrieval metrics could use, and which metrics were skipped and why."""
    from stratonet.profile.controls import negcon_mask
    from stratonet.core.wording import plural

    tcols = [c for c in res.get("treatment", []) if c in df.columns]
    if tcols:
        treated = df[~negcon_mask(df, required=False)]
        n_treat = len(treated.drop_duplicates(tcols))
        act = res.get("map_activity") or {}
        parts = [f"{plural(n_treat, 'treatment')} in the table"]
        if act:
            parts.append(f"{act['n_groups']} scored for mAP activity")
        if res.get("nsc_n") is not None:
            parts.append(f"{res['nsc_n']} usable for NSC ({res.get('nsc_not_evaluable', 0)} without another "
                         "compound of their class)")
        console.print("  " + "; ".join(parts), highlight=False)
    for metric, why in (res.get("skipped") or {}).items():
        console.print(f"  [yellow]skipped[/] {metric}: {why}", highlight=False)
    for k in ("nsc_accuracy", "nscb_accuracy"):
        if res.get(k) is None and k[:-9] not in (res.get("skipped") or {}):
            console.print(f"  [yellow]skipped[/] {k[:-9]}: no evaluable profile (needs compounds of the same "
                          f"class{' in other batches' if k == 'nscb_accuracy' else ''})", highlight=False)


@evaluate.command("embed")
@click.argument("profiles", type=click.Path(path_type=Path))
@click.option("--out", "-o", "run_dir", type=click.Path(path_type=Path), default=Path("run"), show_default=True,
              help="Run folder; writes <run>/evaluate/embed/<name>/.")
@click.option("--name", default=None, help="Feature-set name [default: the table's feature_set, else its file stem].")
@click.option("--color-by", default="Metadata_moa", show_default=True, help="Metadata column that colours the UMAP.")
@click.option("--n-neighbors", type=click.IntRange(2), default=15, show_default=True, help="UMAP neighbours.")
@click.option("--min-dist", type=click.FloatRange(0.0, 1.0), default=0.1, show_default=True, help="UMAP min_dist.")
@click.option("--seed", type=int, default=0, show_default=True, help="UMAP random state.")
def embed(profiles: Path, run_dir: Path, name: str | None, color_by: str, n_neighbors: int, min_dist: float,
          seed: int) -> None:
    """PCA variance (per component and cumulative) and a seeded UMAP coloured by class."""
    from stratonet.evaluate.embed import run_embed

    _run_and_say(run_dir / "evaluate" / "embed", "evaluate_embed" + (f"_{name}" if name else ""), "embeddings",
                 lambda: run_embed(profiles, run_dir, name=name, color_by=color_by, seed=seed,
                                   n_neighbors=n_neighbors, min_dist=min_dist))


def _run_and_say(folder: Path, run_name: str, what: str, compute) -> None:
    """Start the run record in ``folder``, compute (the step writes its own files) and say where they went."""
    from stratonet.core.progress import console

    start_run(folder, run_name)
    out = compute()
    console.print(f"{what} written to {out}")


@evaluate.command("compare")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--out", "-o", "run_dir", type=click.Path(path_type=Path), default=Path("run"), show_default=True,
              help="Run folder; writes <run>/evaluate/compare/<A>_vs_<B>/.")
@click.option("--label", default="Metadata_moa", show_default=True,
              help="Metadata column the random forests rank features for.")
@click.option("--name-a", default=None, help="Name of feature set A [default: its feature_set or file stem].")
@click.option("--name-b", default=None, help="Name of feature set B [default: its feature_set or file stem].")
@click.option("--top", type=click.IntRange(2), default=50, show_default=True, help="Top features per set.")
@click.option("--trees", type=click.IntRange(10), default=200, show_default=True, help="Random-forest trees.")
@click.option("--on", "on", multiple=True, help="Metadata column(s) to join on [default: shared plate/well/site keys].")
@click.option("--seed", type=int, default=0, show_default=True, help="Random-forest seed.")
def compare(a: Path, b: Path, run_dir: Path, label: str, name_a: str | None, name_b: str | None, top: int,
            trees: int, on: tuple[str, ...], seed: int) -> None:
    """Correlation heatmap of the top features (RF importance) of two feature sets on the same samples."""
    from stratonet.evaluate.compare import run_compare

    _run_and_say(run_dir / "evaluate" / "compare", "evaluate_compare", "comparison",
                 lambda: run_compare(a, b, run_dir, label=label, name_a=name_a, name_b=name_b, top=top, seed=seed,
                                     n_estimators=trees, on=list(on) or None))


@evaluate.command("taps")
@click.argument("features", type=click.Path(path_type=Path))
@click.option("--out", "-o", "run_dir", type=click.Path(path_type=Path), default=Path("run"), show_default=True,
              help="Run folder; writes <run>/evaluate/taps/<model>/.")
@click.option("--model", default=None, help="Model name for the output folder [default: from the table's provenance].")
@click.option("--label", default="Metadata_control_type", show_default=True,
              help="Column of the classes to separate; with the control column, --positive vs --negative.")
@click.option("--positive", default="poscon", show_default=True, help="Positive-control value of the control column.")
@click.option("--negative", default="negcon", show_default=True, help="Negative-control value of the control column.")
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True, help="Cross-validation folds.")
@click.option("--null-size", type=click.IntRange(100), default=2000, show_default=True,
              help="copairs null distribution size for the mAP p-values.")
@click.option("--seed", type=int, default=0, show_default=True, help="Fold shuffling and null seed.")
def taps(features: Path, run_dir: Path, model: str | None, label: str, positive: str, negative: str, folds: int,
         null_size: int, seed: int) -> None:
    """Tap selection: per tap of a deep feature table, CV accuracy and mAP separating the classes."""
    from stratonet.evaluate.taps import run_taps

    _run_and_say(run_dir / "evaluate" / "taps", "evaluate_taps", "tap selection",
                 lambda: run_taps(features, run_dir, model=model, label=label, positive=positive, negative=negative,
                                  folds=folds, seed=seed, null_size=null_size))


@evaluate.command("assay")
@_profiles_run_name("assay", "the table's feature_set, else its file stem")
@click.option("--readout", default="nested,reference", show_default=True,
              help="Comma list of readouts; the first drives the dose curves and hits: nested (L2 logistic, number "
                   "of features, C and scaling chosen by nested CV inside the controls), reference (all features, "
                   "standardised, L2 logistic, C=0.1), feature, diff, lda, logistic, mahalanobis, cosine. The "
                   "former default is 'logistic' (with --top-k 25).")
@click.option("--feature", default=None, help="The feature of the 'feature' readout.")
@click.option("--top-k", type=click.IntRange(0), default=25, show_default=True,
              help="diff/lda/logistic readouts: keep the K features with the largest |Welch t| between the controls, "
                   "chosen inside each leave-one-out fold (0: all). Chosen on BBBC013 (benchmarks/RESULTS.md); "
                   "the nested readout chooses its own.")
@click.option("--pca", type=click.IntRange(0), default=0, show_default=True,
              help="Axis readouts: fit on this many principal components of the controls (0: none).")
@control_options
@click.option("--plate-column", default="Metadata_Plate", show_default=True, help="Statistics are per plate.")
@click.option("--compound-column", default=None, help="Compound column of the dose curves [default: found; "
              "without one, all sample wells are one dose series].")
@click.option("--dose-column", default=None,
              help="Dose column [default: found: Metadata_concentration, Metadata_dose*, Metadata_mmoles_per_liter, "
                   "Metadata_dose_index, ...].")
@click.option("--dose-scale", type=click.Choice(["auto", "log", "linear"]), default="auto", show_default=True,
              help="Fit the 4PL on log10 dose, or on the dose as it is (a dose index); auto: linear for *index* "
                   "columns, else log.")
@click.option("--treatment", multiple=True, help="Treatment column(s) for the hits-vs-mAP table (repeatable; "
              "default compound + dose columns).")
@click.option("--fdr", type=float, default=0.05, show_default=True, help="BH false-discovery rate of the hits.")
@click.option("--p-value", "p_method", type=click.Choice(["empirical", "gaussian"]), default="empirical",
              show_default=True, help="p-value of a well's activity against the negcon wells' activities.")
@click.option("--n-boot", type=click.IntRange(20), default=200, show_default=True,
              help="Bootstrap resamples per dose-response fit.")
@click.option("--map/--no-map", "with_map", default=True, show_default=True,
              help="Also compute copairs' phenotypic-activity mAP beside the hits.")
@click.option("--null-size", type=click.IntRange(100), default=10000, show_default=True,
              help="copairs null distribution size.")
@click.option("--seed", type=int, default=0, show_default=True)
def assay(profiles: Path, run: Path, name: str | None, readout: str, feature: str | None, top_k: int, pca: int,
          control_column: str, negcon: str | None, poscon: str | None, controls_file: Path | None,
          plate_column: str, compound_column: str | None,
          dose_column: str | None, dose_scale: str, treatment: tuple[str, ...], fdr: float, p_method: str,
          n_boot: int, with_map: bool, null_size: int, seed: int) -> None:
    """Z'-factor, robust Z', SSMD, S/B and CV of the controls; dose-response 4PL fits; hits against negcon."""
    from stratonet.evaluate._common import default_set_name
    from stratonet.assay.config import AssayConfig, Controls
    from stratonet.assay.evaluate import evaluate_assay, write_assay
    from stratonet.assay.readouts import ReadoutSpec
    from stratonet.core.progress import console

    df, prov = _load(profiles)
    names = control_names(control_column, negcon, poscon, controls_file)
    named = names.column in df.columns and df[names.column].astype(str).isin(names.negcon).any()
    if named and len(names.negcon) == 1 and len(names.poscon) == 1:  # as they are (recorded so in metrics.json)
        controls = Controls(names.column, names.negcon[0], names.poscon[0])
    else:  # several values per control, or already rewritten by index/profile: negcon / poscon
        df, controls = apply_controls(df, names, str(profiles)), Controls()
    name = name or default_set_name(profiles, prov)
    specs = [ReadoutSpec(kind.strip(), feature=feature, top_k=top_k, pca=pca)
             for kind in readout.split(",") if kind.strip()]
    out = run / "evaluate" / "assay" / name
    start_run(out, "assay")
    cfg = AssayConfig(readouts=specs, controls=controls, plate_column=plate_column, compound_column=compound_column,
                      dose_column=dose_column, dose_scale=dose_scale, treatment=list(treatment) or None, fdr=fdr,
                      p_method=p_method, n_boot=n_boot, with_map=with_map, null_size=null_size, seed=seed)
    found = evaluate_assay(df, cfg, name=name, provenance=prov)
    write_assay(found, out)
    res = found.metrics
    for plate, p in res["plates"].items():
        for label, st in p["readouts"].items():
            lo, hi = st["z_prime_ci95"]
            console.print(f"  {plate} {label}: Z' {st['z_prime']:.3f} [{lo:.2f}, {hi:.2f}], robust Z' "
                          f"{st['robust_z_prime']:.3f}, SSMD {st['ssmd']:.2f} (n_pos {st['n_pos']}, "
                          f"n_neg {st['n_neg']})", highlight=False)
            if st.get("settings"):
                ch = st["settings"]
                console.print(f"    chosen by nested CV: top_k {ch['top_k']}, C {ch['C']:g}, scaling {ch['scaling']} "
                              f"(inner Z' {ch['inner_z_prime']:.2f})", highlight=False)
        bf = p["best_feature"]
        console.print(f"  {plate} best single feature (in-sample): {bf['feature']} Z' {bf['z_prime']:.3f}",
                      highlight=False)
        for comp, d in p["dose"].items():
            if d["status"] == "ok":
                console.print(f"  {plate} {comp}: EC50 {d['ec50']:.3g} [{d['ec50_ci95'][0]:.3g}, "
                              f"{d['ec50_ci95'][1]:.3g}], Hill {d['hill']:.2g}, Spearman {d['spearman_dose']:.2f}",
                              highlight=False)
        if p.get("dose_skipped"):
            console.print(f"  [yellow]{plate}: no dose curves[/]: {p['dose_skipped']}", highlight=False)
        h = p["hits"]
        console.print(f"  {plate}: {h['n_hits']} hits of {h['n_tested']} wells at FDR {h['fdr']} "
                      f"({h['p_method']} p vs {h['n_null']} negcon)", highlight=False)
    for w in res["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(f"assay results: {out}", highlight=False)
