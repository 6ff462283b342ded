"""`stratonet export`: images as an OME-Zarr HCS plate, feature tables as AnnData .h5ad."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import start_run


@click.command("export")
@click.argument("source", type=click.Path(path_type=Path, exists=True))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="PLATE.zarr (images of an index or a synthetic plate folder) or TABLE.h5ad (a profile or "
                   "single-cell feature table).")
@click.option("--levels", type=click.IntRange(1, 8), default=1, show_default=True,
              help=".zarr: resolution levels (1 = full resolution only; each next level halves the size).")
@click.option("--compression", type=click.Choice(["blosc-zstd", "blosc-lz4", "zstd", "none"]), default="blosc-zstd",
              show_default=True, help=".zarr: chunk compression (Blosc with byte shuffle decodes fastest).")
@click.option("--plate", default=None, help=".zarr: the plate to write when the index holds several.")
@click.option("--overwrite", is_flag=True, default=False, help="Replace OUT if it exists.")
def export(source: Path, out: Path, levels: int, compression: str, plate: str | None, overwrite: bool) -> None:
    """Write SOURCE in an open format chosen by OUT's suffix.

    OUT ending in .zarr: SOURCE is an index table (stratonet index) or a plate folder holding load_data.csv
    (stratonet synth); its images are written as an OME-Zarr HCS plate that `stratonet index` reads back.
    OUT ending in .h5ad: SOURCE is a feature table (profiles or single cells; .parquet/.csv); Metadata_ columns
    become AnnData obs, numeric feature columns X.
    """
    from stratonet.core.errors import ConfigError
    from stratonet.core.progress import console
    from stratonet.core.wording import plural

    name = out.name.lower()
    if name.endswith(".zarr"):
        from stratonet.export.omezarr import ZarrExport, export_plate, index_of

        start_run(out.parent, "export")
        done = export_plate(index_of(source), out, ZarrExport(levels=levels, plate=plate, overwrite=overwrite,
                                                                  compression=compression))
        console.print(f"OME-Zarr plate {done['plate']}: {plural(done['wells'], 'well')}, "
                      f"{plural(done['sites'], 'site')} x {plural(len(done['channels']), 'channel')} "
                      f"({', '.join(done['channels'])}), {plural(levels, 'level')} -> {out}", highlight=False)
        if done["illum_dropped"]:
            console.print("[yellow]warning: the index's Illum_ columns are not exported (the plate holds raw "
                          "images); add --illum when you index the plate[/]", highlight=False)
    elif name.endswith(".h5ad"):
        from stratonet.export.h5ad import write_h5ad
        from stratonet.core.tables import read_table

        if out.exists() and not overwrite:
            raise ConfigError(f"{out} exists; pass --overwrite to replace it")
        start_run(out.parent, "export")
        done = write_h5ad(read_table(source), out)
        console.print(f"AnnData: {plural(done['cells'], 'row')} x {plural(done['features'], 'feature')}, "
                      f"obs = {plural(len(done['obs']), 'metadata column')} -> {out}", highlight=False)
    else:
        raise ConfigError(f"--out {out}: expected a name ending in .zarr (images) or .h5ad (feature table)")
