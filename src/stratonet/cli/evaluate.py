"""`stratonet evaluate`: classifiers, retrieval, embeddings, feature-set comparison."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available, start_run


@click.group("evaluate")
def evaluate() -> None:
    """Evaluate profiles: classify, retrieval, embed, compare."""


def _load(profiles: Path):
    from stratonet.tables import read_provenance, read_table

    return read_table(profiles), read_provenance(profiles)


@evaluate.command("classify")
@click.argument("profiles", type=click.Path(path_type=Path))
@click.option("--out", "-o", "run", type=click.Path(path_type=Path), default=Path("run"), show_default=True,
              help="Run folder; results go to <RUN>/evaluate/classify/<NAME>/.")
@click.option("--name", default=None, help="Feature-set name (default: the profile file's stem).")
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
def classify(profiles: Path, run: Path, name: str | None, label: str, classifiers: str, n_train: int,
             test_size: float, cv: int, group_by: str | None, exclude_class: tuple[str, ...], rf_trees: int,
             permutation_features: int, seed: int, n_jobs: int) -> None:
    """SVM, random forest, MLP and logistic regression with balanced training sampling and k-fold CV."""
    from stratonet.evaluate.classify import evaluate_classifiers
    from stratonet.progress import console

    name = name or profiles.name.split(".")[0]
    out = run / "evaluate" / "classify" / name
    start_run(out, "classify")
    df, prov = _load(profiles)
    res = evaluate_classifiers(
        df, label=label, classifiers=[c.strip() for c in classifiers.split(",") if c.strip()], n_train=n_train,
        test_size=test_size, cv=cv, group_by=group_by, exclude_class=exclude_class, seed=seed, n_jobs=n_jobs,
        rf_trees=rf_trees, permutation_features=permutation_features, out_dir=out, name=name, provenance=prov)
    for clf, m in res["classifiers"].items():
        cvtxt = f", CV accuracy {m['cv']['accuracy']['mean']:.3f} +- {m['cv']['accuracy']['sd']:.3f}" if "cv" in m else ""
        console.print(f"  {clf}: accuracy {m['accuracy']:.3f}, macro F1 {m['macro_f1']:.3f}{cvtxt}", highlight=False)
    console.print(f"classification results: {out}", highlight=False)


@evaluate.command("retrieval")
@click.argument("profiles", type=click.Path(path_type=Path))
@click.option("--out", "-o", "run", type=click.Path(path_type=Path), default=Path("run"), show_default=True,
              help="Run folder; results go to <RUN>/evaluate/retrieval/<NAME>/.")
@click.option("--name", default=None, help="Feature-set name (default: the profile file's stem).")
@click.option("--label", default="Metadata_moa", show_default=True, help="Class column for consistency and NSC.")
@click.option("--treatment", multiple=True,
              help="Treatment column(s) (repeatable; default compound + concentration columns found).")
@click.option("--batch", default=None, help="Batch column for NSCB (default Metadata_Batch, else Metadata_Plate).")
@click.option("--metric", type=click.Choice(["cosine", "correlation", "euclidean"]), default="cosine",
              show_default=True)
@click.option("--null-size", type=int, default=10000, show_default=True, help="copairs null distribution size.")
@click.option("--threshold", type=float, default=0.05, show_default=True, help="BH-corrected significance level.")
@click.option("--seed", type=int, default=0, show_default=True)
def retrieval(profiles: Path, run: Path, name: str | None, label: str, treatment: tuple[str, ...],
              batch: str | None, metric: str, null_size: int, threshold: float, seed: int) -> None:
    """mAP (copairs) and NSC / NSCB 1-NN accuracy."""
    from stratonet.evaluate.retrieval import evaluate_retrieval
    from stratonet.progress import console

    name = name or profiles.name.split(".")[0]
    out = run / "evaluate" / "retrieval" / name
    start_run(out, "retrieval")
    df, prov = _load(profiles)
    res = evaluate_retrieval(df, label=label, treatment=list(treatment) or None, batch=batch, metric=metric,
                             null_size=null_size, threshold=threshold, seed=seed, out_dir=out, name=name,
                             provenance=prov)
    for kind in ("map_activity", "map_consistency"):
        m = res.get(kind)
        if m:
            console.print(f"  {kind}: mAP {m['mean_map']:.3f}, retrieved {m['fraction_retrieved']:.3f}", highlight=False)
    for k in ("nsc_accuracy", "nscb_accuracy"):
        if res.get(k) is not None:
            console.print(f"  {k}: {res[k]:.3f}", highlight=False)
    console.print(f"retrieval results: {out}", highlight=False)


@evaluate.command("embed")
@click.argument("profiles", type=click.Path(path_type=Path))
def embed(profiles: Path) -> None:
    """PCA variance and UMAP."""
    not_available("evaluate embed", "issue 5")


@evaluate.command("compare")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
def compare(a: Path, b: Path) -> None:
    """Correlation of the top features of two feature sets."""
    not_available("evaluate compare", "issue 5")
