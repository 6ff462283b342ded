"""The intensity-scaling options shared by `extract deep` and `extract pixel`."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.images.scaling import DEFAULT_SCALING, SCALING_MODES


def scaling_options(fn):
    """Add ``--scaling``, ``--scaling-file``, ``--bit-depth`` and ``--scaling-sites`` to a command."""
    opts = [
        click.option("--scaling", type=click.Choice(list(SCALING_MODES)), default=DEFAULT_SCALING, show_default=True,
                     help="Intensity scaling to [0,1]: plate = 0.1/99.9 percentiles per plate and channel from a "
                          "sample of sites (saved as <stem>.scaling.json; keeps intensity phenotypes); image = "
                          "each channel image on its own (erases intensity differences); bitdepth = dtype max."),
        click.option("--scaling-file", type=click.Path(path_type=Path), default=None,
                     help="plate scaling: reuse this .scaling.json (e.g. from another run) instead of estimating."),
        click.option("--bit-depth", type=int, default=None,
                     help="bitdepth scaling: divide by 2**N-1 (e.g. 12 for 12-bit data in uint16 files)."),
        click.option("--scaling-sites", type=click.IntRange(1), default=24, show_default=True,
                     help="plate scaling: sites sampled per plate (seeded by --seed)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn
