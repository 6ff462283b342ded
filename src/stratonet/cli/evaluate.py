"""`stratonet evaluate`: classifiers, retrieval, embeddings, feature-set comparison."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available


@click.group("evaluate")
def evaluate() -> None:
    """Evaluate profiles: classify, retrieval, embed, compare."""


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
def embed(profiles: Path) -> None:
    """PCA variance and UMAP."""
    not_available("evaluate embed", "issue 5")


@evaluate.command("compare")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
def compare(a: Path, b: Path) -> None:
    """Correlation of the top features of two feature sets."""
    not_available("evaluate compare", "issue 5")
