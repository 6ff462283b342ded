"""`stratonet extract classical`: segmentation + CellProfiler measurements."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import on_error_option, start_run
from stratonet.classical.measure import GROUPS


def _ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in str(value).split(",") if v.strip())
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from exc


@click.command("classical")
@click.argument("index", type=click.Path(path_type=Path))
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
@click.option("--save-masks/--no-save-masks", default=False, show_default=True,
              help="Save label images as OUT/masks/<plate>_<well>_<site>_{Nuclei,Cells}.tiff.")
@click.option("--labels-dir", type=click.Path(path_type=Path), default=None,
              help="Load label images '<plate>_<well>_<site>_*nuc*' / '*cell*' (label TIFFs, Cellpose _masks, "
                   "or CellProfiler outline PNG/TIFF, filled) instead of segmenting. Index columns "
                   "Labels_Nuclei / Labels_Cells do the same per row.")
@click.option("--illum/--no-illum", default=True, show_default=True,
              help="Apply Illum_<Channel> functions from the index when present.")
@click.option("--overwrite", is_flag=True, default=False,
              help="Discard existing output instead of resuming (a resume with other settings is refused).")
@click.option("--stall-timeout", type=click.FloatRange(min=1), default=1800, show_default=True,
              help="With -j > 1: stop with an error when no site finishes for this many seconds.")
@on_error_option
def classical(index: Path, out: Path, features: str, workers: int, dna_channel: str, cell_channels: str,
              segmentation: str, nuclei_threshold: str, cell_threshold: str, nuclei_diameter: str,
              texture_scales: str, granularity_spectrum: int, costes: bool, drop_border: bool, save_masks: bool,
              labels_dir: Path | None, illum: bool, overwrite: bool, stall_timeout: float, on_error: str) -> None:
    """Segment nuclei and cells, measure them with cp_measure, and aggregate to sites and wells."""
    from stratonet.classical.measure import MeasureParams, parse_groups
    from stratonet.classical.segment import SegmentParams
    from stratonet.errors import ConfigError
    from stratonet.extract.classical import ClassicalConfig, check_resume, extract_classical
    from stratonet.progress import console
    from stratonet.runguard import OutputLock
    from stratonet.tables import read_table

    dmin, dmax = (_ints(nuclei_diameter) + (0, 0))[:2]
    if not 0 < dmin < dmax:
        raise ConfigError(f"--nuclei-diameter must be 'min,max' with 0 < min < max, got {nuclei_diameter!r}")
    if labels_dir is not None and not labels_dir.is_dir():
        raise ConfigError(f"--labels-dir {labels_dir}: not a folder")
    cfg = ClassicalConfig(
        groups=parse_groups(features),
        dna_channel=dna_channel,
        cell_channels=[c.strip() for c in cell_channels.split(",") if c.strip()],
        segmentation=segmentation,
        drop_border=drop_border,
        save_masks=save_masks,
        labels_dir=str(labels_dir) if labels_dir else None,
        illum=illum,
        segment=SegmentParams(nuclei_threshold=nuclei_threshold, cell_threshold=cell_threshold,
                              nuclei_min_diameter=dmin, nuclei_max_diameter=dmax),
        measure=MeasureParams(texture_scales=_ints(texture_scales), granularity_spectrum=granularity_spectrum,
                              costes=costes),
    )
    if segmentation == "cellpose":
        from stratonet.classical.labels import cellpose_available

        ok, why = cellpose_available()
        if not ok:
            raise ConfigError(f"--segmentation cellpose: {why}; use --segmentation classic")
    table = read_table(index)
    with OutputLock(out):  # one run per output; taken before anything is written into OUT
        if not overwrite:
            check_resume(table, out, cfg)  # before start_run rewrites the run's config file
        start_run(out, "extract_classical")
        man = extract_classical(table, out, cfg, workers=workers, on_error=on_error, overwrite=overwrite,
                                stall_timeout=stall_timeout)
    console.print(
        f"classical features: {man['n_sites']} sites, {man['n_cells']} cells, "
        f"{man['core_s_per_site']:.1f} core-s/site, {man['n_errors']} errors -> {out}"
    )
    for n in man["notes"]:
        console.print(f"[yellow]note:[/] {n}")
