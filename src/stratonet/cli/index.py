"""`stratonet index`: build the per-site image index."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import on_error_option, start_run


@click.command("index")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("index.parquet"), show_default=True,
              help="Index table to write (.parquet, .csv or .csv.gz).")
@click.option("--layout", type=click.Choice(["loaddata", "phenix", "imagexpress", "bbbc021", "regex", "arrays"]),
              default=None, help="How SOURCE is organised [default: loaddata for a .csv file, else phenix].")
@click.option("--channel-map", default=None,
              help="File-name channel -> name, e.g. '1=Mito,2=AGP,3=RNA,4=ER,5=DNA' (phenix default) or 'w1=DNA,...'.")
@click.option("--plate", default=None,
              help="Plate name (phenix/imagexpress/regex; default: a BR barcode in the path, else the folder name); "
                   "for bbbc021 only this plate.")
@click.option("--plane", type=int, default=None, help="Phenix plane to keep [default: 1].")
@click.option("--pattern", default=None,
              help="regex layout: pattern on the path relative to SOURCE with named groups plate, well (or row+col), "
                   "site, channel.")
@click.option("--channels", default=None, help="arrays layout: channel order of each stack, e.g. DNA,ER,RNA,AGP,Mito.")
@click.option("--file-column", default=None, help="arrays layout: column of index.csv naming each file.")
@click.option("--image-root", type=click.Path(path_type=Path), default=None,
              help="bbbc021 layout: folder holding the plate folders [default: the image table's folder].")
@click.option("--source", "source_name", default=None, help="Write this as Metadata_Source.")
@click.option("--batch", default=None, help="Write this as Metadata_Batch.")
@click.option("--platemap", type=click.Path(path_type=Path), default=None,
              help="JUMP platemap (well_position, broad_sample, ...) for all plates, or the folder of platemaps.")
@click.option("--barcode-platemap", type=click.Path(path_type=Path), default=None,
              help="JUMP barcode_platemap.csv (Assay_Plate_Barcode, Plate_Map_Name).")
@click.option("--compound-metadata", type=click.Path(path_type=Path), default=None,
              help="Compound table keyed by broad_sample (pert_iname, control_type, moa/target, ...).")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Read every file's header (local) or check it exists (URLs).")
@click.option("--illum", is_flag=True, default=False,
              help="Compute illumination functions per plate and channel into <out dir>/illum and add Illum_ columns.")
@click.option("--illum-filter", type=click.Choice(["median", "gaussian"]), default="median", show_default=True)
@click.option("--illum-size", type=int, default=None,
              help="Illumination smoothing filter width in pixels [default: 1/8 of the shorter image side].")
@click.option("--allow-duplicates", is_flag=True, default=False,
              help="Keep rows that repeat a key (plate, well, site[, object number]) instead of refusing them.")
@on_error_option
def index(source: Path, out: Path, layout: str | None, channel_map: str | None, plate: str | None,
          plane: int | None, pattern: str | None, channels: str | None, file_column: str | None,
          image_root: Path | None, source_name: str | None, batch: str | None, platemap: Path | None,
          barcode_platemap: Path | None, compound_metadata: Path | None, check: bool, illum: bool,
          illum_filter: str, illum_size: int | None, allow_duplicates: bool, on_error: str) -> None:
    """Index images: one row per site with Metadata_Plate/Well/Site and one Path_<Channel> column per channel.

    SOURCE is a folder of images (phenix, imagexpress, regex), a LoadData CSV (loaddata), BBBC021's image table
    or its folder (bbbc021), or a folder of stacks with an index.csv (arrays).
    """
    from stratonet.index import build_index
    from stratonet.progress import console, get_logger
    from stratonet.resumable import ErrorLog
    from stratonet.tables import write_table

    start_run(out.parent, "index")
    errors = ErrorLog(out.with_name(_stem(out) + ".errors.parquet"))
    df = build_index(
        source, layout, channel_map=channel_map, plate=plate, plane=plane, pattern=pattern, channels=channels,
        file_column=file_column, image_root=image_root, source_name=source_name, batch=batch, platemap=platemap,
        barcode_platemap=barcode_platemap, compound_metadata=compound_metadata, check=check, on_error=on_error,
        record=lambda site, msg: errors.add(site, "index", msg),
    )
    n_dup = _check_duplicates(df, source, allow_duplicates)
    if illum:
        from stratonet.illum import compute_illum

        df = compute_illum(df, out.parent, method=illum_filter, size=illum_size)
    write_table(df, out)
    saved = errors.save()
    n_ch = sum(c.startswith("Path_") and c != "Path_Stack" for c in df.columns)
    msg = f"indexed {len(df)} {'rows' if 'Path_Stack' in df else 'sites'}"
    msg += f" x {n_ch} channels" if n_ch else ""
    get_logger().info("%s -> %s", msg, out)
    console.print(f"{msg} -> {out}", highlight=False)
    if saved is not None:
        console.print(f"[yellow]{len(errors)} site(s) skipped; see {saved}[/]", highlight=False)
    if n_dup:
        console.print(f"[yellow]warning: {n_dup} row(s) repeat a key (kept: --allow-duplicates)[/]", highlight=False)


def _check_duplicates(df, source: Path, allow: bool) -> int:
    """Rows repeating a key (plate, well, site[, object number]): refused unless ``allow``; returns their count."""
    from stratonet.errors import StratoNetError
    from stratonet.index.schema import site_name
    from stratonet.resumable import row_key_columns

    keys = [k for k in row_key_columns(df) if k in df.columns]
    dup = df.duplicated(subset=keys, keep="first") if len(keys) >= 3 else None
    if dup is None or not dup.any():
        return 0
    if not allow:
        raise StratoNetError(f"{source}: {int(dup.sum())} row(s) repeat a key ({', '.join(keys)}), e.g. "
                             f"{site_name(df[dup].iloc[0])}; fix the source or pass --allow-duplicates")
    return int(dup.sum())


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".parquet", ".csv.gz", ".csv", ".tsv"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
