"""`stratonet demo`: every stage, end to end, on bundled data."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("stratonet-demo"), show_default=True,
              help="Output folder.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic plate.")
def demo(out: Path, seed: int) -> None:
    """Run the whole pipeline on a small synthetic plate plus one real JUMP field of view shipped in the package."""
    from stratonet.demo.pipeline import run_demo

    run_demo(out, seed=seed)
