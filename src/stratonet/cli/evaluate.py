"""`stratonet evaluate`: classifiers, retrieval, embeddings, feature-set comparison."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available, start_run


@click.group("evaluate")
def evaluate() -> None:
    """Evaluate profiles: classify, retrieval, embed, compare, taps."""


@evaluate.command("classify")
@click.argument("profiles", type=click.Path(path_type=Path))
def classify(profiles: Path) -> None:
    """SVM, random forest, MLP and logistic regression with balanced training sampling and k-fold CV."""
    not_available("evaluate classify", "issue 5")


@evaluate.command("retrieval")
@click.argument("profiles", type=click.Path(path_type=Path))
def retrieval(profiles: Path) -> None:
    """mAP (copairs) and NSC / NSCB 1-NN accuracy."""
    not_available("evaluate retrieval", "issue 5")


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
    from stratonet.progress import console

    start_run(run_dir, "evaluate_embed" + (f"_{name}" if name else ""))
    out = run_embed(profiles, run_dir, name=name, color_by=color_by, seed=seed, n_neighbors=n_neighbors,
                    min_dist=min_dist)
    console.print(f"embeddings written to {out}")


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
    from stratonet.progress import console

    start_run(run_dir, "evaluate_compare")
    out = run_compare(a, b, run_dir, label=label, name_a=name_a, name_b=name_b, top=top, seed=seed,
                      n_estimators=trees, on=list(on) or None)
    console.print(f"comparison written to {out}")


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
@click.option("--seed", type=int, default=0, show_default=True, help="Fold shuffling seed.")
def taps(features: Path, run_dir: Path, model: str | None, label: str, positive: str, negative: str, folds: int,
         seed: int) -> None:
    """Tap selection: per tap of a deep feature table, CV accuracy and mAP separating the classes."""
    from stratonet.evaluate.taps import run_taps
    from stratonet.progress import console

    start_run(run_dir, "evaluate_taps")
    out = run_taps(features, run_dir, model=model, label=label, positive=positive, negative=negative, folds=folds,
                   seed=seed)
    console.print(f"tap selection written to {out}")
