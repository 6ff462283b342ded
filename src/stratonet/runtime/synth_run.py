"""How a synthetic plate is written: sites rendered in worker processes, the ground truth resumable.

The generator (:mod:`stratonet.synth`) plans a plate and renders and writes one site; this module drives it over
the plate, keeping each written site's ground-truth row in a :class:`~stratonet.runtime.resumable.PartitionedWriter`
so that a rerun with the same parameters renders only the sites still missing.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from stratonet.core.progress import track
from stratonet.core.tables import SITE_KEYS
from stratonet.synth.plate import (
    SITE_TRUTH, PlateSpec, complete_plate, plan_plate, site_jobs, start_plate, write_site, write_site_job,
)


def make_plate(out: str | Path, wells: int = 96, sites: int = 4, seed: int = 0, size: int = 1080,
               plate: str = "SYNTH01", *, compression: str = "none", masks: bool = False,
               overwrite: bool = False, workers: int = 1, progress: bool = True) -> PlateSpec:
    """Generate and write a synthetic Cell Painting plate.

    Parameters
    ----------
    out : path
        Output folder (created).
    wells : int
        Number of wells, 1..384, filled row by row on a 96- (<= 96) or 384-well grid.
    sites : int
        Sites (fields) per well.
    seed : int
        Random seed: the same seed gives byte-identical files.
    size : int
        Image size in pixels (square).
    plate : str
        Plate name (``Metadata_Plate``, barcode in the platemap files).
    compression : {"none", "zlib", "lzw"}
        TIFF compression.
    masks : bool
        Also write ground-truth nuclei and cell label images under ``masks/``.
    overwrite : bool
        Replace a different plate already in ``out``.
    workers : int
        Processes rendering sites in parallel.
    progress : bool
        Show a progress bar.

    Returns
    -------
    PlateSpec
    """
    from stratonet.runtime.resumable import PartitionedWriter

    spec = plan_plate(wells, sites, seed, size, plate, compression)
    out = Path(out)
    meta = start_plate(out, spec, overwrite)
    writer = PartitionedWriter(out / SITE_TRUTH, key_columns=SITE_KEYS, rows_per_part=256)
    jobs = site_jobs(spec, out, masks, writer.done_keys())
    n_workers = max(1, min(int(workers), len(jobs) or 1))
    if n_workers == 1:
        rows = (write_site(*j) for j in jobs)
        for row in track(rows, "synth: rendering sites", total=len(jobs), disable=not progress):
            writer.write(pd.DataFrame([row]))
    else:
        with ProcessPoolExecutor(n_workers) as pool:
            rows = pool.map(write_site_job, jobs, chunksize=2)
            for row in track(rows, f"synth: rendering sites ({n_workers} workers)", total=len(jobs),
                             disable=not progress):
                writer.write(pd.DataFrame([row]))
    writer.finalize()
    complete_plate(spec, out, meta)
    return spec
