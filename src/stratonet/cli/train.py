"""`stratonet train`: StratoNet classifiers and image-level treatment classifiers."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available


@click.group("train")
def train() -> None:
    """Train StratoNet/ResNet classifiers or image-level treatment classifiers."""


@train.command("classifier")
@click.argument("data", type=click.Path(path_type=Path))
def classifier(data: Path) -> None:
    """Train a registered model on ImageNet-style folders."""
    not_available("train classifier", "issue 6")


@train.command("treatment")
@click.argument("index", type=click.Path(path_type=Path))
def treatment(index: Path) -> None:
    """Image-level treatment classification (3-block CNN, ResNet-18, StratoNet head, pixel RF/SVM)."""
    not_available("train treatment", "issue 6")
