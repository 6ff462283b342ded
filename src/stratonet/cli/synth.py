"""`stratonet synth`: synthetic Cell Painting plates with known phenotypes."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import start_run


@click.command("synth")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--wells", type=int, default=96, show_default=True,
              help="Number of wells (1..384), filled row by row on a 96- or 384-well grid.")
@click.option("--sites", type=int, default=4, show_default=True, help="Sites (fields) per well.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; same seed, same plate.")
@click.option("--size", type=int, default=1080, show_default=True, help="Image size in pixels (square).")
@click.option("--plate", default="SYNTH01", show_default=True, help="Plate name (Metadata_Plate).")
@click.option("--compression", type=click.Choice(["none", "zlib", "lzw"]), default="none", show_default=True,
              help="TIFF compression.")
@click.option("--masks/--no-masks", default=False, show_default=True,
              help="Also write ground-truth nuclei and cell label images under OUT/masks.")
@click.option("--overwrite", is_flag=True, default=False, help="Replace a different plate already in OUT.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Processes rendering sites in parallel.")
def synth(out: Path, wells: int, sites: int, seed: int, size: int, plate: str, compression: str, masks: bool,
          overwrite: bool, workers: int) -> None:
    """Write a synthetic 5-channel Cell Painting plate (phenix layout, 16-bit TIFF), load_data.csv and platemap.

    A DMSO majority of wells plus six compounds at three doses, each with a known, dose-dependent phenotype
    (nuclear size, cell count, mitochondrial fragmentation, ER intensity, actin stress fibres, nucleolar spots).
    Rerunning with the same options resumes; OUT holding a different plate is refused unless --overwrite.
    """
    from stratonet.core.progress import console
    from stratonet.runtime import make_plate
    from stratonet.synth.plate import check_out, plan_plate

    spec = plan_plate(wells, sites, seed, size, plate, compression)  # validates the options
    check_out(out, spec, overwrite)  # before start_run writes into OUT
    start_run(out)
    spec = make_plate(out, wells, sites, seed, size, plate, compression=compression, masks=masks,
                      overwrite=overwrite, workers=workers)
    n_neg = sum(w.control_type == "negcon" for w in spec.wells)
    console.print(f"synthetic plate {spec.plate}: {spec.n_wells} wells ({n_neg} DMSO) x {spec.sites} sites, "
                  f"{spec.size} px -> {out}")
