"""The demo's profile, evaluate and report stages (called from :mod:`stratonet.demo.pipeline`).

Settings are deliberately small so the three stages stay within ~90 s on 2 cores for the 24-well demo plate:
3-fold CV, 50-tree forests, a 48-profile balanced training sample, a 1,000-draw copairs null, and no correlation
threshold for sets of more than 2,000 features (pycytominer's pairwise step alone takes minutes at ~9,000 deep
features on 2 shared cores). They are written
to ``<out>/demo_evaluate.config.yaml`` so the report's configuration section shows them.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from stratonet.core.errors import NotAvailableError, StratoNetError
from stratonet.core.progress import console, get_logger

#: Evaluation settings of the demo (small on purpose; see the module docstring).
DEMO_EVAL = {
    "label": "Metadata_moa",
    "profile": {"aggregate": "well (median)", "normalize": "mad_robustize vs negcon (DMSO) per plate",
                "select": ["variance_threshold", "correlation_threshold", "drop_na_columns"],
                "correlation_threshold_max_features": 2000},
    "classify": {"classifiers": ["svm", "rf", "mlp", "logreg"], "cv_folds": 3, "rf_trees": 50, "n_train": 48,
                 "test_size": 0.25, "permutation_features": 10},
    "retrieval": {"metric": "cosine", "null_size": 1000,
                  "treatment": "compound column only: the plate's doses of a compound act as its replicates"},
    "embed": {"color_by": "Metadata_moa", "seed": 0},
    "compare": {"top": 50, "trees": 100},
    "taps": {"folds": 3, "null_size": 500},
    "note": "demo settings: few CV folds and small forests to fit the demo's time budget on 2 cores",
}


def _warn(what: str, exc: Exception) -> None:
    msg = f"{what}: skipped ({exc})"
    get_logger().warning(msg)
    console.print(f"[yellow]{msg}[/]", highlight=False)


def _usable_for_profiles(df) -> str | None:
    """Why a feature table cannot be profiled against controls (None when it can)."""
    from stratonet.profile import negcon_mask

    if "Metadata_Well" not in df.columns:
        return "no Metadata_Well column"
    if not negcon_mask(df, required=False).any():
        return "no negative controls"
    if df["Metadata_Well"].nunique() < 4:
        return "fewer than 4 wells"
    return None


def profile_stage(ctx) -> None:
    """Aggregate each feature set to wells, MAD-robustize against DMSO per plate, select features."""
    from stratonet.evaluate._common import drop_attrs
    from stratonet.profile import ProfileConfig, run_profile
    from stratonet.core.tables import read_provenance, read_table, write_table

    if not ctx.features:
        raise NotAvailableError("profile: no feature tables in the demo context (the extract stages did not run)")
    for name, path in ctx.features.items():
        df = read_table(path)
        why = _usable_for_profiles(df)
        if why:  # e.g. the single real field of view: shown in the report's overview, not profiled
            console.print(f"  {name}: not profiled ({why}); listed in the report overview", highlight=False)
            continue
        select = list(DEMO_EVAL["profile"]["select"])
        n_in = sum(1 for c in df.columns if not str(c).startswith("Metadata_"))
        if n_in > DEMO_EVAL["profile"]["correlation_threshold_max_features"]:
            select.remove("correlation_threshold")  # pycytominer's pairwise step takes minutes at ~10k features
        prof = run_profile(df, ProfileConfig(aggregate_level="well", operation="median",
                                         normalize_method="mad_robustize", by_plate=True, reference="negcon",
                                         select=select))
        prov = dict(read_provenance(path))
        prov.setdefault("feature_set", name)
        prov["profile"] = {"source": str(path), "steps": prof.attrs.get("steps", [])}
        drop_attrs(prof)  # the steps travel in the provenance; attrs would slow every later pandas operation
        out = write_table(prof, Path(ctx.out) / "profiles" / f"{name}.parquet", provenance=prov)
        ctx.profiles[name] = out
        n_feat = sum(1 for c in prof.columns if not str(c).startswith("Metadata_"))
        console.print(f"  {name}: {len(prof)} well profiles x {n_feat} features", highlight=False)


def _classify_size_note(n_wells: int, counts, small: list[str], test_size: float) -> None:
    """Say once why the demo's classifier figures are a smoke test: the demo plate has too few wells per class."""
    from stratonet.report.numbers import SMALL_TEST

    n_test = int(round(test_size * (n_wells - int(counts[small].sum()) if small else n_wells)))
    without = f" (without {', '.join(small)}: fewer than 2 wells)" if small else ""
    console.print(f"  classify: {n_wells} wells in {len(counts)} MoA classes{without}; the {test_size:.0%} test set "
                  f"holds {n_test} wells, fewer than {SMALL_TEST}: its classifier figures test the pipeline, "
                  "not the features. A screen needs hundreds of wells (the CNN of the train stage below is "
                  "validated on 40 wells).", highlight=False)


def evaluate_stage(ctx) -> None:
    """Classifiers, retrieval and embeddings per feature set; deep vs classical comparison; tap selection."""
    from stratonet.evaluate._common import drop_attrs
    from stratonet.evaluate.classify import evaluate_classifiers, write_classify
    from stratonet.evaluate.config import ClassifyConfig, RetrievalConfig
    from stratonet.evaluate.compare import run_compare
    from stratonet.evaluate.embed import run_embed
    from stratonet.evaluate.retrieval import evaluate_retrieval, write_retrieval
    from stratonet.evaluate.taps import run_taps, taps_of
    from stratonet.profile.controls import compound_column
    import pyarrow.parquet as pq

    from stratonet.core.tables import read_provenance, read_table

    if not ctx.profiles:
        raise NotAvailableError("evaluate: no profiles in the demo context (the profile stage did not run)")
    out = Path(ctx.out)
    out.mkdir(parents=True, exist_ok=True)
    label = DEMO_EVAL["label"]
    c, r = DEMO_EVAL["classify"], DEMO_EVAL["retrieval"]
    excluded: dict[str, list[str]] = {}
    said = False
    for name, path in ctx.profiles.items():
        df, prov = drop_attrs(read_table(path)), read_provenance(path)
        counts = df[label].astype(str).value_counts()
        small = sorted(counts[counts < 2].index)  # a stratified train/test split needs 2 profiles per class
        if small:
            excluded[name] = small
        if not said:  # once for every feature set: they share the plate's wells
            said = True
            _classify_size_note(len(df), counts, small, c["test_size"])
        try:
            cfg = ClassifyConfig(label=label, classifiers=c["classifiers"], n_train=c["n_train"], exclude_class=small,
                                 test_size=c["test_size"], cv=c["cv_folds"], rf_trees=c["rf_trees"],
                                 permutation_features=c["permutation_features"], seed=ctx.seed)
            write_classify(evaluate_classifiers(df, cfg, name=name, provenance=prov),
                           out / "evaluate" / "classify" / name)
        except StratoNetError as exc:
            _warn(f"classify {name}", exc)
        try:
            compound = compound_column(df)
            rcfg = RetrievalConfig(label=label, treatment=[compound] if compound else None, metric=r["metric"],
                                   null_size=r["null_size"], seed=ctx.seed)
            write_retrieval(evaluate_retrieval(df, rcfg, name=name, provenance=prov),
                            out / "evaluate" / "retrieval" / name)
        except StratoNetError as exc:
            _warn(f"retrieval {name}", exc)
        try:
            run_embed(path, out, name=name, color_by=DEMO_EVAL["embed"]["color_by"], seed=ctx.seed)
        except StratoNetError as exc:
            _warn(f"embed {name}", exc)
        console.print(f"  {name}: classify, retrieval, embed done", highlight=False)
    if "deep" in ctx.profiles and "classical" in ctx.profiles:
        try:
            run_compare(ctx.profiles["deep"], ctx.profiles["classical"], out, label=label, name_a="deep",
                        name_b="classical", top=DEMO_EVAL["compare"]["top"],
                        n_estimators=DEMO_EVAL["compare"]["trees"], seed=ctx.seed)
        except StratoNetError as exc:
            _warn("compare deep vs classical", exc)
    options = dict(DEMO_EVAL, classify=dict(c, excluded_classes=excluded))
    (out / "demo_evaluate.config.yaml").write_text(yaml.safe_dump({"command": "stratonet demo (evaluate stage)",
                                                                  "options": options}, sort_keys=False))
    deep = ctx.profiles.get("deep")
    if deep is not None and taps_of(pq.read_schema(deep).names):
        try:
            run_taps(deep, out, folds=DEMO_EVAL["taps"]["folds"], null_size=DEMO_EVAL["taps"]["null_size"],
                     seed=ctx.seed)
        except StratoNetError as exc:
            _warn("taps", exc)


def report_stage(ctx) -> None:
    """The HTML report of the whole demo run."""
    from stratonet.report import build_report

    path = build_report(ctx.out, Path(ctx.out) / "report" / "report.html", title="StratoNet demo report")
    ctx.report = path
    ctx.outputs["report (one self-contained HTML file)"] = path
    ctx.outputs["report metrics (machine-readable)"] = path.parent / "metrics.json"
