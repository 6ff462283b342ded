"""`stratonet extract classical`: segmentation + CellProfiler measurements."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from stratonet.cli.common import on_error_option, start_run
from stratonet.cli.paths import PATH_OR_URL
from stratonet.cli.scaleout import run_scaled, scaleout_options
from stratonet.extract.classical.measure import GROUPS


def _ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in str(value).split(",") if v.strip())
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from exc


@click.command("classical")
@click.argument("index", type=PATH_OR_URL)
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("classical"), show_default=True,
              help="Output folder (single_cell.parquet, site.parquet, well.parquet, *_mean.parquet, manifest).")
@click.option("--features", default="all", show_default=True,
              help=f"Comma list of groups: {','.join(GROUPS)} (or 'all').")
@click.option("--workers", "-j", type=click.IntRange(1), default=1, show_default=True,
              help="Parallel processes (at most 2x this many sites in memory).")
@click.option("--dna-channel", default="DNA", show_default=True, help="Channel used to find nuclei.")
@click.option("--cell-channels", default="AGP,ER", show_default=True,
              help="Channels (averaged) used to grow cells; missing ones are left out, with a note.")
@click.option("--segmentation", type=click.Choice(["classic", "cellpose"]), default="classic", show_default=True,
              help="classic: threshold + watershed (scikit-image); cellpose: only if installed with local weights.")
@click.option("--nuclei-threshold", type=click.Choice(["otsu", "li"]), default="otsu", show_default=True,
              help="Nuclei threshold: Otsu or minimum cross-entropy (li).")
@click.option("--cell-threshold", type=click.Choice(["otsu", "li"]), default="otsu", show_default=True)
@click.option("--nuclei-diameter", default="12,90", show_default=True,
              help="Min,max equivalent diameter of nuclei in pixels.")
@click.option("--texture-scales", default="3,5,10", show_default=True, help="Haralick scales in pixels.")
@click.option("--granularity-spectrum", type=click.IntRange(1), default=16, show_default=True)
@click.option("--costes/--no-costes", default=False, show_default=True,
              help="Also measure Costes colocalisation (slow).")
@click.option("--drop-border/--keep-border", default=False, show_default=True,
              help="Drop cells touching the image border (they are always flagged in *_TouchesBorder).")
@click.option("--center-object", is_flag=True, default=False,
              help="Single-cell crops (arrays layout): measure only the cell at the image centre; neighbours cut "
                   "by the crop edge are dropped.")
@click.option("--save-masks/--no-save-masks", default=False, show_default=True,
              help="Save label images as OUT/masks/<plate>_<well>_<site>_{Nuclei,Cells}.tiff.")
@click.option("--labels-dir", type=click.Path(path_type=Path), default=None,
              help="Load label images '<plate>_<well>_<site>_*nuc*' / '*cell*' (label TIFFs, Cellpose _masks, "
                   "or CellProfiler outline PNG/TIFF, filled) instead of segmenting. Index columns "
                   "Labels_Nuclei / Labels_Cells do the same per row.")
@click.option("--nuclei-labels", "nuclei_pattern", default=None,
              help="With --labels-dir: file-name pattern of the nuclei labels, placeholders {plate} {well} {site} "
                   "{stem_<Channel>}, e.g. 'NucleiOutlines_{plate}_{well}_{site}.tiff' or "
                   "'{stem_DNA}_nuclei_outlines.png' (CellProfiler's own names).")
@click.option("--cells-labels", "cells_pattern", default=None,
              help="With --labels-dir: file-name pattern of the cell labels (see --nuclei-labels).")
@click.option("--illum/--no-illum", default=True, show_default=True,
              help="Apply Illum_<Channel> functions from the index when present.")
@click.option("--bit-depth", default="auto", show_default=True,
              help="Intensity scale to [0, 1]: 'auto' divides by the file dtype's maximum (uint8 255, uint16 65535), "
                   "as CellProfiler does; N divides every image by 2**N - 1 (e.g. 12 for 12-bit data in uint16).")
@click.option("--on-empty", type=click.Choice(["warn", "error"]), default="warn", show_default=True,
              help="A site where no object is found: warn (write it with counts 0 and say so) or error "
                   "(a site error, which --on-error then fails on or skips). The manifest counts them either way.")
@click.option("--overwrite", is_flag=True, default=False,
              help="Discard existing output instead of resuming (a resume with other settings is refused).")
@click.option("--stall-timeout", type=click.FloatRange(min=1), default=1800, show_default=True,
              help="With -j > 1: stop with an error when no site finishes for this many seconds.")
@on_error_option
@scaleout_options
def classical(index: Path, out: Path, features: str, workers: int, dna_channel: str, cell_channels: str,
              segmentation: str, nuclei_threshold: str, cell_threshold: str, nuclei_diameter: str,
              texture_scales: str, granularity_spectrum: int, costes: bool, drop_border: bool, center_object: bool,
              save_masks: bool, labels_dir: Path | None, nuclei_pattern: str | None, cells_pattern: str | None,
              illum: bool, bit_depth: str, on_empty: str, overwrite: bool, stall_timeout: float, on_error: str,
              engine: str, ray_address: str | None, ray_shards: int | None, shard: str | None) -> None:
    """Segment nuclei and cells, measure them with cp_measure, and aggregate to sites and wells."""
    from stratonet.extract.classical.measure import MeasureParams, parse_groups
    from stratonet.extract.classical.segment import SegmentParams
    from stratonet.core.errors import ConfigError
    from stratonet.extract.classical.run import ClassicalConfig
    from stratonet.runtime.classical_run import check_resume, extract_classical
    from stratonet.core.progress import console
    from stratonet.runtime.runguard import OutputLock
    from stratonet.core.tables import read_table
    from stratonet.core.wording import plural, row_unit

    dmin, dmax = (_ints(nuclei_diameter) + (0, 0))[:2]
    if not 0 < dmin < dmax:
        raise ConfigError(f"--nuclei-diameter must be 'min,max' with 0 < min < max, got {nuclei_diameter!r}")
    if labels_dir is not None and not labels_dir.is_dir():
        raise ConfigError(f"--labels-dir {labels_dir}: not a folder")
    depth = str(bit_depth).strip().lower()
    if depth != "auto" and not (depth.isdigit() and 1 <= int(depth) <= 32):
        raise ConfigError(f"--bit-depth must be 'auto' or an integer 1-32, got {bit_depth!r}")
    if (nuclei_pattern or cells_pattern) and labels_dir is None:
        raise ConfigError("--nuclei-labels / --cells-labels need --labels-dir")
    if cells_pattern and not nuclei_pattern:
        raise ConfigError("--cells-labels needs --nuclei-labels too (cells are matched to their nuclei)")
    cfg = ClassicalConfig(
        bit_depth="auto" if depth == "auto" else int(depth),
        groups=parse_groups(features),
        dna_channel=dna_channel,
        cell_channels=[c.strip() for c in cell_channels.split(",") if c.strip()],
        segmentation=segmentation,
        drop_border=drop_border,
        center_object=center_object,
        save_masks=save_masks,
        labels_dir=str(labels_dir) if labels_dir else None,
        labels_nuclei_pattern=nuclei_pattern,
        labels_cells_pattern=cells_pattern,
        illum=illum,
        segment=SegmentParams(nuclei_threshold=nuclei_threshold, cell_threshold=cell_threshold,
                              nuclei_min_diameter=dmin, nuclei_max_diameter=dmax),
        measure=MeasureParams(texture_scales=_ints(texture_scales), granularity_spectrum=granularity_spectrum,
                              costes=costes),
    )
    if segmentation == "cellpose":
        from stratonet.extract.classical.labels import cellpose_available

        ok, why = cellpose_available()
        if not ok:
            raise ConfigError(f"--segmentation cellpose: {why}; use --segmentation classic")
    table = read_table(index)
    unit = row_unit(table.columns)

    def run(idx, dest):
        return extract_classical(idx, dest, cfg, workers=workers if engine == "local" else 1, on_error=on_error,
                                 on_empty=on_empty, overwrite=overwrite, stall_timeout=stall_timeout)

    local = engine == "local" and not shard
    # one run per output; each shard locks its own folder instead (array jobs of one screen run side by side)
    with OutputLock(out) if local else contextlib.nullcontext():
        if local and not overwrite:
            check_resume(table, out, cfg)  # before start_run rewrites the run's config file
        start_run(out, "extract_classical")
        man, how = run_scaled(run, table, out, engine, shard, ray_address, ray_shards)
    if how != "local":
        console.print(f"engine: {how}", highlight=False)
    resumed = man.get("n_sites_skipped_as_done", 0)
    done = (f"{plural(man['n_sites'] + resumed, unit)} ({man['n_sites']} this run, {resumed} resumed)" if resumed
            else plural(man['n_sites'], unit))
    speed = f"{man['core_s_per_site']:.1f} core-s/{unit}" if man["n_sites"] else "nothing left to compute"
    console.print(f"classical features: {done}, {plural(man['n_cells'], 'cell')} this run, {speed}, "
                  f"{plural(man['n_errors'], 'error')} -> {out}", highlight=False)
    for n in man["notes"]:
        console.print(f"[yellow]note:[/] {n}", highlight=False)
    if man["n_sites_empty"]:
        shown = ", ".join(man["empty_sites"][:5]) + (", ..." if man["n_sites_empty"] > 5 else "")
        console.print(f"[yellow]warning:[/] {plural(man['n_sites_empty'], unit)} with 0 objects ({shown}); "
                      "see n_sites_empty in site.manifest.json", highlight=False)
    if man["n_nonfinite_values"]:
        cols = sorted(man["nonfinite_values"])
        console.print(f"[yellow]warning:[/] {plural(man['n_nonfinite_values'], 'infinite value')} set to NaN in "
                      f"{plural(len(cols), 'column')} ({', '.join(cols[:3])}{', ...' if len(cols) > 3 else ''})",
                      highlight=False)
