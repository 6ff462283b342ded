"""`stratonet weights`: import and inspect checkpoints."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import not_available


@click.group("weights")
def weights() -> None:
    """Import and inspect model weights (safetensors + JSON model card)."""


@weights.command("import")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, help="Checkpoint to write.")
def import_(src: Path, out: Path) -> None:
    """Convert a torchvision / timm state dict into a StratoNet checkpoint with its model card."""
    not_available("weights import", "issue 3")
