"""The end-to-end demo: a small synthetic plate plus the real JUMP field of view shipped in the package.

Each stage is one function taking the shared :class:`DemoContext`; stages of features not yet available
raise :class:`~stratonet.errors.NotAvailableError` and are listed as skipped, never faked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from stratonet.errors import NotAvailableError
from stratonet.progress import console, log_to_file

# Demo size: small enough for < 10 min on 2 cores, big enough that every stage has signal.
DEMO_WELLS = 24
DEMO_SITES = 2


@dataclass
class DemoContext:
    """Paths shared between demo stages."""

    out: Path
    seed: int = 0
    synth_dir: Path | None = None
    synth_index: Path | None = None
    real_index: Path | None = None
    features: dict[str, Path] = field(default_factory=dict)  # feature-set name -> table
    profiles: dict[str, Path] = field(default_factory=dict)  # feature-set name -> profile table
    outputs: dict[str, Path] = field(default_factory=dict)  # what to print at the end
    report: Path | None = None


def bundled_fov_dir() -> Path:
    """Folder of the real JUMP field of view shipped with the package."""
    return Path(str(resources.files("stratonet") / "data" / "jump_fov"))


# --- stages ---------------------------------------------------------------------------------------------------

def stage_synth(ctx: DemoContext) -> None:
    """Write the synthetic plate."""
    raise NotAvailableError("synth")


def stage_index(ctx: DemoContext) -> None:
    """Index the synthetic plate and the bundled real FOV."""
    raise NotAvailableError("index")


def stage_extract_deep(ctx: DemoContext) -> None:
    """StratoNet features, channel by channel."""
    raise NotAvailableError("extract deep")


def stage_extract_classical(ctx: DemoContext) -> None:
    """Segmentation + CellProfiler measurements."""
    raise NotAvailableError("extract classical")


def stage_extract_pixel(ctx: DemoContext) -> None:
    """Flattened-pixel baseline."""
    raise NotAvailableError("extract pixel")


def stage_profile(ctx: DemoContext) -> None:
    """Normalise and select features for each feature set."""
    from stratonet.report.demo_stages import profile_stage

    profile_stage(ctx)


def stage_evaluate(ctx: DemoContext) -> None:
    """Classifiers, retrieval and embeddings for each feature set."""
    from stratonet.report.demo_stages import evaluate_stage

    evaluate_stage(ctx)


def stage_train(ctx: DemoContext) -> None:
    """A brief treatment-CNN training run on the synthetic plate."""
    raise NotAvailableError("train")


def stage_report(ctx: DemoContext) -> None:
    """The HTML report."""
    from stratonet.report.demo_stages import report_stage

    report_stage(ctx)


STAGES: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("synth", stage_synth),
    ("index", stage_index),
    ("extract deep", stage_extract_deep),
    ("extract classical", stage_extract_classical),
    ("extract pixel", stage_extract_pixel),
    ("profile", stage_profile),
    ("evaluate", stage_evaluate),
    ("train", stage_train),
    ("report", stage_report),
]


def run_demo(out: str | Path = "stratonet-demo", seed: int = 0) -> DemoContext:
    """Run every available stage; print what was written and where."""
    ctx = DemoContext(out=Path(out), seed=seed)
    ctx.out.mkdir(parents=True, exist_ok=True)
    log_to_file(ctx.out / "stratonet.log")
    timings: list[tuple[str, str]] = []
    for name, fn in STAGES:
        t0 = time.perf_counter()
        console.rule(f"[bold]{name}")
        try:
            fn(ctx)
            timings.append((name, f"{time.perf_counter() - t0:.1f} s"))
        except NotAvailableError:
            console.print(f"[yellow]{name}: not yet available, skipped[/]")
            timings.append((name, "not yet available"))
    console.rule("[bold]demo finished")
    for name, t in timings:
        console.print(f"  {name:<20} {t}")
    console.print(f"\nOutputs in [bold]{ctx.out.resolve()}[/]")
    for what, p in ctx.outputs.items():
        console.print(f"  {what:<20} {Path(p).resolve()}")
    if ctx.report is not None:
        console.print(f"\n[bold green]Report:[/] {Path(ctx.report).resolve()}")
    return ctx
