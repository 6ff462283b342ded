"""`stratonet profile`: aggregate, annotate, normalise, select features, spherize."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.cli.common import start_run
from stratonet.cli.controls import control_names, control_options

SELECT_DEFAULT = "variance_threshold,correlation_threshold,drop_na_columns"


@click.command("profile")
@click.argument("features", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("profiles.parquet"), show_default=True,
              help="Profile table to write (.parquet, .csv or .csv.gz).")
@click.option("--aggregate", "level", type=click.Choice(["site", "well", "treatment", "none"]), default="well",
              show_default=True, help="Aggregate rows per site, well or treatment (compound + concentration).")
@click.option("--operation", type=click.Choice(["median", "mean"]), default="median", show_default=True)
@click.option("--normalize", "method", type=click.Choice(["standardize", "mad_robustize", "none"]),
              default="mad_robustize", show_default=True)
@click.option("--by-plate/--global", "by_plate", default=True, show_default=True,
              help="Normalise each plate separately, or the whole table at once.")
@click.option("--reference", type=click.Choice(["negcon", "all"]), default="negcon", show_default=True,
              help="Rows the normalisation and spherizing are fitted on.")
@click.option("--select", default=SELECT_DEFAULT, show_default=True,
              help="Comma-separated feature-selection operations: variance_threshold, correlation_threshold, "
                   "drop_na_columns, blocklist, drop_outliers; 'none' for none.")
@click.option("--corr-threshold", type=float, default=0.9, show_default=True)
@click.option("--na-cutoff", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="drop_na_columns drops features with more than this share of missing values (0: any NaN).")
@click.option("--zero-mad", type=click.Choice(["drop", "keep"]), default="drop", show_default=True,
              help="mad_robustize: features with zero MAD in the reference are dropped, or kept with "
                   "pycytominer's epsilon (values up to ~1e18).")
@click.option("--mad-epsilon", type=float, default=1e-18, show_default=True,
              help="Added to the MAD (pycytominer's mad_robustize_epsilon).")
@click.option("--blocklist", type=click.Path(path_type=Path), default=None,
              help="Text file of feature names to drop (one per line) for 'blocklist'; default pycytominer's list.")
@click.option("--spherize/--no-spherize", "do_spherize", default=False, show_default=True,
              help="ZCA-whiten after selection, fitted on the reference rows.")
@click.option("--spherize-epsilon", type=float, default=1e-6, show_default=True)
@click.option("--platemap", type=click.Path(path_type=Path), default=None,
              help="Plate map (csv/tsv/parquet) joined on well (and plate if it has one); its columns replace "
                   "the features' columns of the same name (said on the terminal).")
@click.option("--protect/--no-protect", "protect", default=True, show_default=True,
              help="With negcon and poscon wells (or --protect-label), keep the best separating features that "
                   "--select would remove, and record what selection cost (docs/feature-selection.md).")
@click.option("--protect-label", default=None, help="Class column (e.g. Metadata_moa) whose separation ranks the "
              "features to protect, instead of the controls.")
@click.option("--out-of-core/--in-memory", "out_of_core", default=None,
              help="Aggregate a Parquet table (or folder of Parquet shards) by streaming it in bounded memory. "
                   "Default: out of core when the table's uncompressed size exceeds a quarter of this machine's "
                   "memory.")
@control_options
def profile(features: Path, out: Path, level: str, operation: str, method: str, by_plate: bool, reference: str,
            select: str, corr_threshold: float, na_cutoff: float, zero_mad: str, mad_epsilon: float,
            blocklist: Path | None, do_spherize: bool, spherize_epsilon: float, platemap: Path | None,
            protect: bool, protect_label: str | None, out_of_core: bool | None, control_column: str,
            negcon: str | None, poscon: str | None, controls_file: Path | None) -> None:
    """Turn a feature table into normalised, feature-selected profiles.

    FEATURES is a table, a folder of Parquet shards, or the output folder of `extract classical` (its
    single_cell.parquet is used, else its site.parquet). Infinite values are set to NaN and counted; 'blocklist' in
    --select acts first, before normalisation.
    """
    from stratonet.core.errors import InputFileError
    from stratonet.profile import ProfileConfig, run_profile
    from stratonet.profile.protect import ProtectConfig, selection_lines
    from stratonet.core.progress import console
    from stratonet.core.tables import check_table_name, read_provenance, read_table, write_table

    check_table_name(out)  # before minutes of computing, not after (issue 27, D9)
    start_run(out.parent, f"{out.name.split('.')[0]}.profile")
    if features.is_dir() and not features.name.lower().endswith(".parquet") and any(
            (features / n).exists() for n in ("single_cell.parquet", "site.parquet")):
        features = next(features / n for n in ("single_cell.parquet", "site.parquet") if (features / n).exists())
        console.print(f"features: {features}", highlight=False)
    elif features.is_dir() and not any(features.rglob("*.parquet")):
        raise InputFileError(str(features), "a folder without single_cell.parquet, site.parquet or Parquet shards "
                                            "(give a feature table, the output folder of extract classical, or a "
                                            "folder of Parquet shards)")
    agg_level = None if level == "none" else level
    pre_steps: list[dict] = []
    if _use_out_of_core(features, agg_level, out_of_core):
        df, pre_steps = _aggregate_out_of_core(features, agg_level, operation)
        agg_level = None
    else:
        df = read_table(features)
    pm = read_table(platemap) if platemap else None
    block = None
    if blocklist is not None:
        if not blocklist.exists():
            raise InputFileError(str(blocklist), "file not found")
        block = [ln.strip() for ln in blocklist.read_text().splitlines() if ln.strip() and ln.strip() != "blocklist"]
    ops = "" if select.strip().lower() == "none" else select
    cfg = ProfileConfig(aggregate_level=agg_level, operation=operation, normalize_method=method, by_plate=by_plate,
                        reference=reference, select=ops, corr_threshold=corr_threshold, blocklist=block,
                        spherize=do_spherize, spherize_epsilon=spherize_epsilon, na_cutoff=na_cutoff,
                        zero_mad=zero_mad, mad_epsilon=mad_epsilon,
                        protect=ProtectConfig(enabled=protect, label=protect_label),
                        controls=control_names(control_column, negcon, poscon, controls_file))
    prof = run_profile(df, cfg, platemap=pm)
    if features.is_dir():  # a folder of shards: the first carries the provenance
        from stratonet.profile.outofcore import parquet_sources

        provenance = dict(read_provenance(parquet_sources(features)[0]))
    else:
        provenance = dict(read_provenance(features))
    provenance.setdefault("feature_set", features.name.split(".")[0])
    steps = pre_steps + prof.attrs.get("steps", [])[1 if pre_steps else 0:]
    prof.attrs["steps"] = steps
    provenance["profile"] = {"source": str(features), "steps": steps, "selection": prof.attrs.get("selection", {})}
    write_table(prof, out, provenance=provenance)
    for step in prof.attrs.get("steps", []):
        cols = step.get("columns")
        named = f" ({', '.join(cols[:3])}{', ...' if len(cols) > 3 else ''})" if cols else ""
        console.print(f"  {step['step']}{named}: {step['rows']} rows x {step['features']} features", highlight=False)
    for line in selection_lines(prof.attrs.get("selection", {})):
        console.print(f"  {line}", highlight=False)
    console.print(f"profiles: {out}", highlight=False)


def _use_out_of_core(features: Path, level: str | None, asked: bool | None) -> bool:
    """Whether to aggregate by streaming: as asked, else when the Parquet table is large for this machine."""
    from stratonet.core.errors import ConfigError
    from stratonet.profile.outofcore import uncompressed_bytes

    parquet = features.is_dir() or features.name.lower().endswith((".parquet", ".pq"))
    if asked:
        if level is None:
            raise ConfigError("--out-of-core aggregates a table: give --aggregate site, well or treatment")
        if not parquet:
            raise ConfigError(f"--out-of-core reads Parquet (a file or a folder of shards), not {features.name}")
        return True
    if asked is False or level is None or not parquet or not features.exists():
        return False
    import psutil

    return uncompressed_bytes(features) > psutil.virtual_memory().total / 4


def _aggregate_out_of_core(features: Path, level: str, operation: str):
    """Stream-aggregate ``features`` per ``level``; returns the aggregated table and its profile steps."""
    import pandas as pd
    import polars as pl

    from stratonet.profile.aggregate import strata_for
    from stratonet.profile.outofcore import aggregate_parquet, parquet_sources
    from stratonet.core.progress import console

    files = parquet_sources(features)
    names = pl.scan_parquet([str(f) for f in files]).collect_schema().names()
    keys = strata_for(pd.DataFrame(columns=names), level)
    console.print(f"aggregating {len(files)} Parquet file(s) out of core ({operation} per {level})", highlight=False)
    df = aggregate_parquet(features, keys, operation=operation)
    n_in = int(df["Metadata_n_aggregated"].sum())
    n_feat = sum(1 for c in df.columns if not c.startswith("Metadata_"))
    steps = [{"step": "input", "rows": n_in, "features": n_feat},
             {"step": f"aggregate {operation} per {level} (out of core, polars)", "rows": len(df),
              "features": n_feat}]
    return df, steps
