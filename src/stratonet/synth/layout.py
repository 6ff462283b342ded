"""Plate geometry and the platemap: which well gets which treatment, and phenix file names.

Wells fill a 96-well (8 x 12) grid row by row when there are at most 96, otherwise a 384-well (16 x 24) grid.
Treated wells are a strict minority: ``(N - 1) // 2`` of them, cycling through every compound at the highest dose,
then the next dose, and so on, so that small plates still hold every compound. Their positions are a seeded random
permutation of the plate, so treatment is not confounded with the plate effect (edges, gradients).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from stratonet.core.errors import ConfigError
from stratonet.index.schema import well_from_row_col
from stratonet.synth.compounds import (
    COMPOUNDS, CONTROL_ID, CONTROL_MOA, CONTROL_NAME, DOSES_UM, Compound, compound_by_name,
)

MAX_WELLS = 384
PLATE_FORMATS = {96: (8, 12), 384: (16, 24)}

# Phenix channel numbers -> JUMP channel names (ch1..ch5).
PHENIX_CHANNELS: dict[int, str] = {1: "Mito", 2: "AGP", 3: "RNA", 4: "ER", 5: "DNA"}
CHANNELS: tuple[str, ...] = tuple(PHENIX_CHANNELS[i] for i in sorted(PHENIX_CHANNELS))


@dataclass(frozen=True)
class WellSpec:
    """One well of a synthetic plate and its treatment."""

    well: str
    row: int
    col: int
    broad_sample: str
    pert_iname: str
    moa: str
    concentration: float
    control_type: str

    @property
    def compound(self) -> Compound | None:
        """The compound, or ``None`` for DMSO."""
        return compound_by_name(self.pert_iname)

    def metadata(self) -> dict:
        """Treatment columns in the output-contract naming."""
        return {
            "Metadata_broad_sample": self.broad_sample,
            "Metadata_pert_iname": self.pert_iname,
            "Metadata_moa": self.moa,
            "Metadata_concentration": self.concentration,
            "Metadata_control_type": self.control_type,
        }


def plate_format_for(n_wells: int) -> int:
    """96 for up to 96 wells, else 384; ConfigError outside 1..384."""
    if n_wells < 1:
        raise ConfigError(f"--wells must be at least 1 (got {n_wells})")
    if n_wells > MAX_WELLS:
        raise ConfigError(f"--wells {n_wells}: a plate holds at most {MAX_WELLS} wells")
    return 96 if n_wells <= 96 else 384


def plate_key(plate: str) -> int:
    """A stable 32-bit integer for a plate name (for seeding)."""
    return zlib.crc32(str(plate).encode())


def well_positions(n_wells: int) -> list[tuple[int, int]]:
    """(row, col), 1-based, of the first ``n_wells`` wells filled row by row."""
    rows, cols = PLATE_FORMATS[plate_format_for(n_wells)]
    return [(i // cols + 1, i % cols + 1) for i in range(n_wells)]


def treatment_sequence(n_treated: int) -> list[tuple[Compound, float]]:
    """The first ``n_treated`` treatments: every compound at the highest dose, then the next dose, cycling."""
    doses = sorted(DOSES_UM, reverse=True)
    cycle = [(c, d) for d in doses for c in COMPOUNDS]
    return [cycle[i % len(cycle)] for i in range(n_treated)]


def make_platemap(n_wells: int, seed: int, plate: str) -> list[WellSpec]:
    """The platemap of a synthetic plate: a DMSO majority and the compounds at scattered positions.

    Parameters
    ----------
    n_wells : int
        1..384 wells.
    seed : int
        Seed of the layout (with the plate name and ``n_wells``).
    plate : str
        Plate name.

    Returns
    -------
    list of WellSpec
        In row-major well order.
    """
    positions = well_positions(n_wells)
    n_treated = (n_wells - 1) // 2
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), plate_key(plate), n_wells, 0x1A70]))
    order = rng.permutation(n_wells)
    treated = dict(zip(order[:n_treated].tolist(), treatment_sequence(n_treated)))
    wells = []
    for i, (r, c) in enumerate(positions):
        name = well_from_row_col(r, c)
        if i in treated:
            comp, dose = treated[i]
            wells.append(WellSpec(name, r, c, comp.broad_sample, comp.pert_iname, comp.moa, float(dose), "trt"))
        else:
            wells.append(WellSpec(name, r, c, CONTROL_ID, CONTROL_NAME, CONTROL_MOA, 0.0, "negcon"))
    return wells


def phenix_name(row: int, col: int, site: int, channel: int, plane: int = 1) -> str:
    """Opera Phenix file name, e.g. ``r01c01f01p01-ch1sk1fk1fl1.tiff``."""
    return f"r{row:02d}c{col:02d}f{site:02d}p{plane:02d}-ch{channel}sk1fk1fl1.tiff"
