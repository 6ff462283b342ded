"""``--engine``, ``--ray-address``, ``--ray-shards`` and ``--shard`` for the extractors, and ``stratonet merge``."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

ENGINE_HELP = ("local: this machine (default); ray: shards as Ray tasks on a cluster (--ray-address or $RAY_ADDRESS; "
               "a local Ray cluster otherwise), merged at the end.")
SHARD_HELP = ("Process only shard I of N (wells split into N contiguous blocks; I counts from 0), into "
              "<out>.shards/; join the shards with 'stratonet merge OUT'. For array jobs (Slurm, AWS Batch, Nextflow).")


def scaleout_options(f):
    """Add the scale-out options to an extractor command."""
    f = click.option("--shard", default=None, metavar="I/N", help=SHARD_HELP)(f)
    f = click.option("--ray-shards", type=click.IntRange(1), default=None,
                     help="ray engine: number of tasks (default: 4 per task slot, i.e. per node or GPU, with at least "
                          "8 wells each).")(f)
    f = click.option("--ray-address", default=None, help="ray engine: cluster address (default $RAY_ADDRESS).")(f)
    f = click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help=ENGINE_HELP)(f)
    return f


def run_scaled(run: Callable, index, out: Path, engine: str = "local", shard: str | None = None,
               ray_address: str | None = None, ray_shards: int | None = None) -> tuple[dict, str]:
    """Run an extractor locally, as one shard, or on Ray.

    Parameters
    ----------
    run : callable
        ``run(index, dest) -> manifest``: the extractor bound to its options.
    index : path or DataFrame

    Returns
    -------
    manifest, how : dict, str
        ``how`` is ``"local"``, ``"shard I/N"`` or ``"ray (N shards)"``.
    """
    import pandas as pd

    from stratonet.core.errors import ConfigError
    from stratonet.runtime.scaleout import parse_shard, run_on_ray, run_shard
    from stratonet.core.tables import read_table

    if engine == "local" and shard is None:
        return run(index, out), "local"
    df = index if isinstance(index, pd.DataFrame) else read_table(index)
    if shard is not None:
        if engine == "ray":
            raise ConfigError("--shard splits work for array jobs; with --engine ray the shards are made for you")
        i, n = parse_shard(shard)
        done = run_shard(run, df, out, i, n)
        man = done["manifest"]
        return man, f"shard {i}/{n}"
    man = run_on_ray(run, df, out, address=ray_address, shards=ray_shards)
    return man, f"ray ({man['shards']} shards)"


def shared_plate_scaling(index, out: Path, channels, n_sites: int, seed: int, illum: bool) -> Path:
    """Estimate plate scaling once on the whole index (as a local run would) and return its file for the shards.

    Each shard estimating its own percentiles from its own wells would scale plates differently from shard to
    shard; the file is written where a local run writes it (``<out stem>.scaling.json``) and reused on reruns.
    """
    from stratonet.images.scaling import ScalingSpec, resolve_scaling, scaling_path
    from stratonet.index.schema import channels_of

    chans = list(channels) if channels else channels_of(index)
    resolve_scaling(ScalingSpec("plate", sites=n_sites, seed=seed, illum=illum), index.to_dict("records"), chans, out)
    return scaling_path(out)


@click.command("merge")
@click.argument("out", type=click.Path(path_type=Path))
def merge(out: Path) -> None:
    """Join the shards of OUT (written with --shard I/N) into OUT; refuses if any shard is missing."""
    from stratonet.core.progress import console
    from stratonet.runtime.scaleout import merge_shards

    man = merge_shards(out)
    console.print(f"merged {man['shards']} shard(s) into {out}: {', '.join(man['merged_files'])}", highlight=False)
