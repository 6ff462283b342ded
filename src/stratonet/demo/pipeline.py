"""The end-to-end demo: a small synthetic plate plus the real JUMP field of view shipped in the package.

Each stage is one function taking the shared :class:`DemoContext`; stages of features not yet available
raise :class:`~stratonet.core.errors.NotAvailableError` and are listed as skipped, never faked.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from stratonet.core.errors import NotAvailableError
from stratonet.core.progress import console, log_to_file

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

DEMO_SIZE = 540  # px; half a JUMP field: cells at 0.71x scale, ~75 cells per site, keeps later stages fast


def stage_synth(ctx: DemoContext) -> None:
    """Write the synthetic plate: DEMO_WELLS x DEMO_SITES sites of DEMO_SIZE px into ``<out>/synth``."""
    from stratonet.runtime import make_plate

    out = ctx.out / "synth"
    make_plate(out, wells=DEMO_WELLS, sites=DEMO_SITES, seed=ctx.seed, size=DEMO_SIZE, plate="DEMO-SYNTH",
               overwrite=True, workers=2)  # ~0.2 CPU s per 540 px site: ~10 CPU s in all
    ctx.synth_dir = out
    ctx.outputs["synthetic plate (images, load_data.csv)"] = out


REAL_FOV_PLATE = "BR00117006"
REAL_FOV_CHANNELS = "2=AGP,3=RNA,5=DNA"


def stage_index(ctx: DemoContext) -> None:
    """Index the synthetic plate (its load_data.csv) and the bundled real FOV (Phenix names, plate BR00117006)."""
    from stratonet.index import build_index
    from stratonet.core.tables import write_table

    folder = ctx.out / "index"
    real = build_index(bundled_fov_dir(), "phenix", plate=REAL_FOV_PLATE, channel_map=REAL_FOV_CHANNELS)
    ctx.real_index = write_table(real, folder / "real_fov.parquet")
    ctx.outputs["index (real FOV)"] = ctx.real_index
    if ctx.synth_dir is None or not (Path(ctx.synth_dir) / "load_data.csv").exists():
        console.print("[yellow]index: no synthetic plate (synth stage skipped); indexed the real FOV only[/]")
        return
    synth = build_index(Path(ctx.synth_dir) / "load_data.csv", "loaddata")
    ctx.synth_index = write_table(synth, folder / "synth.parquet")
    ctx.outputs["index (synthetic)"] = ctx.synth_index


DEMO_WEIGHTS = "efficientnet_lite0.in1k"  # ImageNet EfficientNet-Lite0, installed with stratonet[pretrained]
BASELINE_MODEL = "stratonet50"  # untrained (seeded) baseline row


def stage_extract_deep(ctx: DemoContext, weights: str = DEMO_WEIGHTS, input_size: int | None = None,
                       baseline_model: str = BASELINE_MODEL) -> None:
    """Deep features, channel by channel, from pretrained ImageNet EfficientNet-Lite0 (``features/deep.parquet``
    on the synthetic plate, ``features/deep_real.parquet`` on the real FOV), plus the untrained StratoNet-50 (seed
    ``ctx.seed``) on the synthetic plate as a named baseline (``features/deep_untrained.parquet``).
    """
    from stratonet.runtime import extract_deep

    if ctx.synth_index is None and ctx.real_index is None:
        raise NotAvailableError("extract deep needs the index stage")
    feats = ctx.out / "features"
    common = dict(weights=weights, seed=ctx.seed, input_size=input_size, overwrite=True, batch_size=64)
    if ctx.synth_index is not None:
        m = extract_deep(ctx.synth_index, feats / "deep.parquet", **common)
        ctx.features["deep"] = feats / "deep.parquet"
        ctx.outputs["deep features"] = feats / "deep.parquet"
        console.print(f"  synthetic plate: {m['sites_processed']} sites, {m['channel_images_per_s']:.1f} "
                      f"channel-images/s ({m['provenance']['weights']}, scaling {m['provenance']['scaling']['mode']})")
        base = extract_deep(ctx.synth_index, feats / "deep_untrained.parquet", model=baseline_model, seed=ctx.seed,
                            input_size=input_size, overwrite=True, batch_size=64)
        ctx.features["deep_untrained"] = feats / "deep_untrained.parquet"
        ctx.outputs["deep features (untrained baseline)"] = feats / "deep_untrained.parquet"
        console.print(f"  baseline: {baseline_model} {base['provenance']['weights']}, "
                      f"{base['channel_images_per_s']:.1f} channel-images/s")
    if ctx.real_index is not None:
        m = extract_deep(ctx.real_index, feats / "deep_real.parquet", **common)
        ctx.outputs["deep features (real FOV)"] = feats / "deep_real.parquet"
        console.print(f"  real JUMP FOV: {m['sites_processed']} site, channels {', '.join(m['provenance']['channels'])}")


def stage_extract_classical(ctx: DemoContext) -> None:
    """Segmentation + CellProfiler measurements on the synthetic plate and the bundled real FOV.

    Uses a lighter feature set than the CLI default to stay within its time budget: no radial distribution,
    texture at scale 3 only, an 8-step granularity spectrum.
    """
    from stratonet.extract.classical.measure import MeasureParams
    from stratonet.extract.classical.run import ClassicalConfig
    from stratonet.runtime import extract_classical
    from stratonet.core.tables import read_table
    from stratonet.core.wording import plural

    if ctx.synth_index is None and ctx.real_index is None:
        raise NotAvailableError("extract classical needs the synth / index stages")
    groups = ["areashape", "intensity", "location", "texture", "granularity", "correlation", "neighbors"]
    cfg = ClassicalConfig(groups=groups, measure=MeasureParams(texture_scales=(3,), granularity_spectrum=8),
                          save_masks=True)  # the report draws nuclei and cell outlines from these
    console.print(f"classical: demo feature set {', '.join(groups)} (texture scale 3, granularity 8 steps; "
                  "the CLI default adds radial distribution, texture scales 5 and 10, 16 granularity steps)")
    feats = ctx.out / "features"
    for name, index in (("classical", ctx.synth_index), ("classical_real", ctx.real_index)):
        if index is None:
            continue
        out = feats / name  # the folder `stratonet extract classical -o` writes, with the same file names
        man = extract_classical(read_table(index), out, cfg, workers=2)
        console.print(f"  {name}: {plural(man['n_sites'], 'site')}, {plural(man['n_cells'], 'cell')}, "
                      f"{man['core_s_per_site']:.1f} core-s/site", highlight=False)
        for note in man["notes"]:
            console.print(f"  [yellow]note:[/] {note}")
        what = "synthetic plate" if name == "classical" else "real JUMP FOV"
        ctx.outputs[f"classical features, {what} (single cells, sites, wells, masks)"] = out
    # profiled from the site table (median of the cells), as `stratonet profile FOLDER/site.parquet` would
    profiled = "classical" if ctx.synth_index is not None else "classical_real"
    ctx.features["classical"] = feats / profiled / "site.parquet"


def stage_extract_pixel(ctx: DemoContext) -> None:
    """Flattened-pixel baseline (16 x 16 per channel) of the synthetic plate, else of the real FOV."""
    from stratonet.runtime import extract_pixel

    index = ctx.synth_index or ctx.real_index
    if index is None:
        raise NotAvailableError("extract pixel (no index)")
    out = ctx.out / "features" / "pixel.parquet"
    ctx.features["pixel"] = extract_pixel(index, out, size=16)
    ctx.outputs["pixel features (16 x 16 baseline)"] = ctx.features["pixel"]


def stage_profile(ctx: DemoContext) -> None:
    """Normalise and select features for each feature set."""
    from stratonet.demo.stages import profile_stage

    profile_stage(ctx)


def stage_evaluate(ctx: DemoContext) -> None:
    """Classifiers, retrieval and embeddings for each feature set."""
    from stratonet.demo.stages import evaluate_stage

    evaluate_stage(ctx)


DEMO_TRAIN_EPOCHS = 8
DEMO_TRAIN_WELLS = 96


def stage_train(ctx: DemoContext) -> None:
    """A brief treatment-CNN training run -> ``<out>/train/treatment_cnn3/``.

    The 24-well demo plate holds only one or two wells per compound, too few for a split by well, so this stage
    renders its own small training plate (``DEMO_TRAIN_WELLS`` x 2 sites at 256 px, same generator and seed) and
    splits it 80/20 by well. All five channels are kept as channels (the synthetic phenotypes are channel-specific),
    at 64 px rather than the CLI's 128 to keep the stage short; the 3-block CNN, weighted loss against the DMSO
    majority.
    """
    from stratonet.index import build_index
    from stratonet.runtime import make_plate
    from stratonet.core.tables import write_table
    from stratonet.train.treatment import TreatmentConfig, train_treatment

    plate_dir = ctx.out / "synth_train"
    make_plate(plate_dir, wells=DEMO_TRAIN_WELLS, sites=2, seed=ctx.seed, size=256, plate="DEMO-TRAIN", workers=2)
    index_path = write_table(build_index(plate_dir / "load_data.csv", layout="loaddata"),
                             ctx.out / "index" / "synth_train.parquet")
    cfg = TreatmentConfig(index=index_path, out=ctx.out, label="Metadata_pert_iname", model="cnn3",
                          grayscale=False, size=64, crop=56, epochs=DEMO_TRAIN_EPOCHS, batch_size=16,
                          group_by="well", seed=ctx.seed, name="treatment_cnn3")
    metrics = train_treatment(cfg)
    ctx.outputs["training plate (96 wells, 256 px)"] = plate_dir
    ctx.outputs["index (training plate)"] = index_path
    ctx.outputs["treatment CNN: weights, curves, confusion matrix"] = cfg.run_dir()
    ctx.outputs["treatment CNN: metrics"] = cfg.run_dir() / "metrics.json"
    if metrics["collapsed"]:
        console.print("[yellow]train: the demo CNN collapsed onto one class (see metrics.json)[/]")


def stage_assay(ctx: DemoContext) -> None:
    """Z', dose-response and hits on a small synthetic dose-series plate (see :mod:`stratonet.demo.assay`)."""
    from stratonet.demo.assay import assay_stage

    assay_stage(ctx)


def stage_report(ctx: DemoContext) -> None:
    """The HTML report."""
    from stratonet.demo.stages import report_stage

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
    ("evaluate assay", stage_assay),
    ("report", stage_report),
]


#: What the folders the stages write without listing them hold (the outputs list describes every line).
FOLDER_WHAT = {
    "profiles/": "well profiles per feature set (normalised against DMSO)",
    "evaluate/classify/": "classifier metrics, predictions, confusion matrices",
    "evaluate/retrieval/": "mAP (activity, consistency) and NSC accuracy",
    "evaluate/embed/": "UMAP and PCA per feature set",
    "evaluate/compare/": "deep vs classical feature correlation",
    "evaluate/taps/": "which network depth (tap) separates the MoAs",
    "evaluate/": "evaluation results per feature set",
    "features/classical_assay/": "classical features of the assay plate",
    "synth_assay/": "synthetic dose-series plate (assay stage)",
    "synth_train/": "synthetic 96-well training plate",
    "index/": "index tables (one row per site)",
    "report/": "tables beside the report (CSV)",
}
#: Files that go with a listed output and need no line of their own.
_COMPANIONS = (".manifest.json", ".scaling.json", ".config.yaml", ".log", ".errors.csv", ".errors.parquet", ".lock")


def unlisted_folders(out: Path, listed) -> dict[str, Path]:
    """The folders under ``out`` that the outputs list does not cover yet, by relative name (``"profiles/"``).

    A folder is covered when it, or a folder above it, is listed. A folder with nothing listed inside it, or
    holding a file that is not listed (manifests, configs and logs beside listed files aside), is listed itself;
    otherwise its subfolders are looked at in turn. Together with ``listed`` the result names every folder the demo wrote.
    """
    listed = {Path(p).resolve() for p in listed}
    found: dict[str, Path] = {}

    def visit(d: Path) -> None:
        r = d.resolve()
        if r in listed or any(q in r.parents for q in listed):
            return
        loose = [f for f in d.iterdir() if f.is_file() and f.resolve() not in listed
                 and not f.name.endswith(_COMPANIONS)]
        holds_listed = any(r in q.parents for q in listed)
        if d != out and (loose or not holds_listed):
            found[f"{d.relative_to(out).as_posix()}/"] = d
            return
        for sub in sorted(p for p in d.iterdir() if p.is_dir()):
            visit(sub)

    if Path(out).is_dir():
        visit(Path(out))
    return found


def describe_unlisted(out: Path, outputs: dict[str, Path]) -> None:
    """Add every folder the outputs list does not cover to ``outputs``, described by :data:`FOLDER_WHAT` (a folder
    is never its own description)."""
    for rel, path in unlisted_folders(out, outputs.values()).items():
        what = FOLDER_WHAT.get(rel, "other files the demo wrote")
        outputs[what if what not in outputs else f"{what} ({rel})"] = path


def run_demo(out: str | Path = "stratonet-demo", seed: int = 0) -> DemoContext:
    """Run every available stage; print what was written and where."""
    ctx = DemoContext(out=Path(out), seed=seed)
    ctx.out.mkdir(parents=True, exist_ok=True)
    log_to_file(ctx.out / "stratonet.log")
    timings: list[tuple[str, str]] = []
    t_start = time.perf_counter()
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
    describe_unlisted(ctx.out, ctx.outputs)  # every folder written is listed, with what it holds
    print_outputs(ctx.out, ctx.outputs, ctx.report)
    _finish(ctx, time.perf_counter() - t_start)
    return ctx


def _finish(ctx: DemoContext, wall: float) -> None:
    """How to open the report, and how long the demo took (with the machine's load, which the time depends on)."""
    if ctx.report is not None:
        console.print(f"Open it (or serve it from a remote machine) with: stratonet view {ctx.out}",
                      soft_wrap=True, highlight=False)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(f"Demo wall time: {int(wall // 60)} min {wall % 60:.0f} s on {os.cpu_count()} CPU cores "
                  f"(1-min load average at the end: {load:.1f})", highlight=False)


def print_outputs(out: Path, outputs: dict[str, Path], report: Path | None) -> None:
    """The outputs as paths relative to ``out`` (printed once, on its own line), beside what they are.

    Paths are never cut by the terminal: a path column that does not wrap, and descriptions that wrap at words.
    """
    from rich.table import Table

    root = Path(out).resolve()
    console.print("\nOutputs, under")
    console.print(str(root), soft_wrap=True, highlight=False)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for what, p in outputs.items():
        p = Path(p).resolve()
        rel = os.path.relpath(p, root) + ("/" if p.is_dir() else "")
        grid.add_row(rel, what)
    console.print(grid, highlight=False)
    if report is not None:
        path = str(Path(report).resolve())
        if len("Report: " + path) > console.width:
            console.print("\n[bold green]Report:[/]")
            console.print(path, soft_wrap=True, highlight=False)
        else:
            console.print(f"\n[bold green]Report:[/] {path}", soft_wrap=True, highlight=False)
