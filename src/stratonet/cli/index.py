"""`stratonet index`: build the per-site image index."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import on_error_option, start_run
from stratonet.cli.controls import apply_controls, control_names, control_options
from stratonet.cli.paths import PATH_OR_URL


@click.command("index")
@click.argument("source", type=PATH_OR_URL)
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("index.parquet"), show_default=True,
              help="Index table to write (.parquet, .csv or .csv.gz).")
@click.option("--layout", type=click.Choice(["loaddata", "phenix", "imagexpress", "bbbc021", "regex", "arrays",
                                            "ome-zarr", "bioio"]),
              default=None, help="How SOURCE is organised [default: loaddata for a .csv file, ome-zarr for a zarr "
                                 "plate (a .zarr name or zarr metadata), else phenix].")
@click.option("--channel-map", default=None,
              help="File-name channel -> name, e.g. '1=Mito,2=AGP,3=RNA,4=ER,5=DNA' (phenix default) or 'w1=DNA,...'.")
@click.option("--plate", default=None,
              help="Plate name (phenix/imagexpress/regex; default: a BR barcode in the path, else the folder name); "
                   "for bbbc021 only this plate.")
@click.option("--plane", type=int, default=None, help="Phenix plane to keep [default: 1].")
@click.option("--level", type=click.IntRange(0), default=0, show_default=True,
              help="ome-zarr: resolution level to read (0 = full resolution).")
@click.option("--z", "z_index", type=click.IntRange(0), default=0, show_default=True,
              help="ome-zarr / bioio: z plane to read (0-based).")
@click.option("--z-project", type=click.Choice(["max"]), default=None,
              help="ome-zarr / bioio: project all z planes instead of reading one (max: maximum projection).")
@click.option("--timepoint", type=click.IntRange(0), default=0, show_default=True,
              help="ome-zarr / bioio: time point to read (0-based).")
@click.option("--pattern", default=None,
              help="regex layout: pattern on the path relative to SOURCE with named groups plate, well (or row+col), "
                   "site, channel.")
@click.option("--channels", default=None, help="arrays layout: channel order of each stack, e.g. DNA,ER,RNA,AGP,Mito.")
@click.option("--file-column", default=None, help="arrays layout: column of index.csv naming each file.")
@click.option("--columns", default=None,
              help="arrays layout: which index.csv column holds what, e.g. "
                   "'plate=Image_Metadata_Plate_DAPI,well=well,site=field,file=crop'.")
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
@click.option("--labels-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of label images (masks or CellProfiler outlines): adds Labels_Nuclei / Labels_Cells "
                   "columns for `extract classical`, found with --nuclei-labels / --cells-labels.")
@click.option("--nuclei-labels", "nuclei_pattern", default="{plate}_{well}_{site}_*[Nn]uc*", show_default=True,
              help="File-name pattern of nuclei labels in --labels-dir; placeholders {plate} {well} {site} "
                   "{stem_<Channel>}, e.g. 'NucleiOutlines_{plate}_{well}_{site}.tiff'.")
@click.option("--cells-labels", "cells_pattern", default="{plate}_{well}_{site}_*[Cc]ell*", show_default=True,
              help="File-name pattern of cell labels in --labels-dir ('' for none).")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Read every file's header (local) or check it exists (URLs).")
@click.option("--illum", is_flag=True, default=False,
              help="Compute illumination functions per plate and channel into <out dir>/illum and add Illum_ columns.")
@click.option("--illum-filter", type=click.Choice(["median", "gaussian"]), default="median", show_default=True)
@click.option("--illum-size", type=int, default=None,
              help="Illumination smoothing filter width in pixels [default: 1/8 of the shorter image side].")
@click.option("--plate-format", type=click.Choice(["auto", "96", "384", "1536"]), default="auto", show_default=True,
              help="Wells must exist on this plate format; auto: the smallest format holding each plate's wells.")
@click.option("--allow-duplicates", is_flag=True, default=False,
              help="Keep rows that repeat a key (plate, well, site[, object number]) instead of refusing them.")
@on_error_option
@control_options
def index(source: Path, out: Path, layout: str | None, channel_map: str | None, plate: str | None,
          plane: int | None, level: int, z_index: int, z_project: str | None, timepoint: int,
          pattern: str | None, channels: str | None, file_column: str | None, columns: str | None,
          image_root: Path | None, source_name: str | None, batch: str | None, platemap: Path | None,
          barcode_platemap: Path | None, compound_metadata: Path | None, labels_dir: Path | None,
          nuclei_pattern: str, cells_pattern: str, check: bool, illum: bool,
          illum_filter: str, illum_size: int | None, plate_format: str, allow_duplicates: bool,
          on_error: str, control_column: str, negcon: str | None, poscon: str | None,
          controls_file: Path | None) -> None:
    """Index images: one row per site with Metadata_Plate/Well/Site and one Path_<Channel> column per channel.

    SOURCE is a folder of images (phenix, imagexpress, regex), a LoadData CSV (loaddata), BBBC021's image table
    or its folder (bbbc021), a folder of stacks with an index.csv (arrays), an OME-Zarr HCS plate, local or
    s3:// / https:// (ome-zarr), or a vendor file or folder of them read through bioio (bioio).
    """
    from stratonet.index.omezarr import PlaneChoice

    from stratonet.index import IndexOptions, build_index
    from stratonet.index.build import default_layout
    from stratonet.core.progress import console, get_logger
    from stratonet.core.errorlog import ErrorLog
    from stratonet.core.tables import write_table

    start_run(out.parent, "index")
    errors = ErrorLog(out.with_name(_stem(out) + ".errors.parquet"))
    opts = IndexOptions(
        channel_map=channel_map, plate=plate, plane=plane, pattern=pattern, channels=channels,
        file_column=file_column, columns=columns, image_root=image_root, source_name=source_name, batch=batch,
        platemap=platemap, barcode_platemap=barcode_platemap, compound_metadata=compound_metadata, check=check,
        on_error=on_error, plate_format=plate_format,
        planes=PlaneChoice(level=level, z=z_project or z_index, t=timepoint),
    )
    df = build_index(source, layout, options=opts, record=lambda site, msg: errors.add(site, "index", msg))
    names = control_names(control_column, negcon, poscon, controls_file)
    if not names.is_default:  # the field's negcon / poscon from here on, for every later command
        df = apply_controls(df, names, str(source))
    n_unlabelled = None
    if labels_dir is not None:
        from stratonet.extract.classical.label_files import add_label_columns

        df, n_unlabelled = add_label_columns(df, labels_dir, nuclei_pattern, cells_pattern or None)
    n_dup = _check_duplicates(df, source, allow_duplicates)
    if illum:
        from stratonet.images.illum import compute_illum

        df = compute_illum(df, out.parent, method=illum_filter, size=illum_size)
    write_table(df, out)
    saved = errors.save()
    n_ch = sum(c.startswith("Path_") and c != "Path_Stack" for c in df.columns)
    from stratonet.core.wording import plural, row_unit

    msg = f"indexed {plural(len(df), row_unit(df.columns))}"
    msg += f" x {plural(n_ch, 'channel')}" if n_ch else ""
    get_logger().info("%s -> %s", msg, out)
    console.print(f"{msg} -> {out}", highlight=False)
    console.print(_channel_summary(df, layout or default_layout(source), channel_map, channels), highlight=False)
    if n_unlabelled is not None:
        unit = row_unit(df.columns)
        cells_txt = ""
        if "Labels_Cells" in df.columns:
            cells_txt = f", {plural(int(df['Labels_Cells'].notna().sum()), unit)} with cells labels"
            cells_txt += "" if df["Labels_Cells"].notna().any() else f" (none matched '{cells_pattern}')"
        console.print(f"label columns: {plural(len(df) - n_unlabelled, unit)} with nuclei labels{cells_txt}"
                      + (f"; [yellow]{plural(n_unlabelled, unit)} without[/] (pattern '{nuclei_pattern}' "
                         f"in {labels_dir})" if n_unlabelled else ""), highlight=False)
    if saved is not None:
        console.print(f"[yellow]{plural(len(errors), 'site')} skipped; see {saved}[/]", highlight=False)
    if n_dup:
        console.print(f"[yellow]warning: {plural(n_dup, 'row')} repeat a key (kept: --allow-duplicates)[/]",
                      highlight=False)


def _channel_summary(df, layout: str, channel_map: str | None, channels: str | None) -> str:
    """'channels found: ...', plus those the layout's channel map expected but no file had."""
    from stratonet.index.layouts import IMAGEXPRESS_CHANNELS, JUMP_PHENIX_CHANNELS, parse_channel_map
    from stratonet.index.schema import channels_of

    found = [c for c in channels_of(df) if f"Path_{c}" not in df.columns or df[f"Path_{c}"].notna().any()]
    line = f"channels found: {', '.join(found) if found else 'none'}"
    default = {"phenix": JUMP_PHENIX_CHANNELS, "imagexpress": IMAGEXPRESS_CHANNELS}.get(layout)
    spec = channel_map or default
    expected = list(parse_channel_map(spec).values()) if spec else []
    if layout == "arrays" and channels:
        expected = [c.strip() for c in channels.split(",") if c.strip()]
    missing = [c for c in expected if c not in found]
    if missing:
        line += f"; expected by the {'channel map' if channel_map else layout + ' layout'} but not found: " \
                f"{', '.join(missing)}"
    return line


#: What to do about rows repeating a key: crops of one site need an id (extraction refuses repeated keys).
DUPLICATE_HINT = ("if the rows are single-cell crops of one site, name their id column with --columns "
                  "ObjectNumber=<column> (e.g. ObjectNumber=cell_index); else fix the source. --allow-duplicates "
                  "keeps the rows in the index, but extraction refuses rows that are not unique")


def _check_duplicates(df, source, allow: bool) -> int:
    """Rows repeating a key (plate, well, site[, object number]): refused unless ``allow``; returns their count."""
    from stratonet.core.errors import StratoNetError
    from stratonet.index.schema import site_name
    from stratonet.runtime.resumable import row_key_columns

    keys = [k for k in row_key_columns(df) if k in df.columns]
    dup = df.duplicated(subset=keys, keep="first") if len(keys) >= 3 else None
    if dup is None or not dup.any():
        return 0
    if not allow:
        raise StratoNetError(f"{source}: {int(dup.sum())} row(s) repeat a key ({', '.join(keys)}), e.g. "
                             f"{site_name(df[dup].iloc[0])}; {DUPLICATE_HINT}")
    return int(dup.sum())


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".parquet", ".csv.gz", ".csv", ".tsv"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
