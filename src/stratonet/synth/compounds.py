"""The synthetic compounds: names, identifiers and the dose-dependent phenotype each one causes.

Every compound drives exactly one phenotype (its ``moa``); the strength of the phenotype follows a Hill curve of the
dose, so effects grow monotonically with dose. The DMSO control has strength 0 for every phenotype.

Phenotypes (moa) and what the renderer changes, with the effect at full strength ``s = 1``:

=======================  ===================================================================================
moa                      change in the images
=======================  ===================================================================================
nuclear_size             nuclear area x (1 + 2 s); DNA per pixel slightly lower (content grows with area)
cell_count               fraction of cells kept 1 - 0.85 s; a fraction 0.4 s of the survivors are pyknotic
                         (small, bright, round nuclei in a shrunken cell)
mito_fragmentation       mitochondria switch from a tubular network to bright puncta (mix s) that cluster
                         around the nucleus; Mito brightness x (1 + 0.5 s)
er_intensity             ER brightness x (1 + 2 s)
actin_stress_fibres      parallel actin fibres across the cell (AGP): amplitude 0.15 -> 0.15 + 2.5 s,
                         present in a fraction 0.3 + 0.7 s of cells (DMSO: faint fibres in 30 % of cells)
nucleolar_spots          number of nucleoli (RNA spots inside the nucleus) x (1 + 3 s)
=======================  ===================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from stratonet.core.errors import StratoNetError

DOSES_UM: tuple[float, ...] = (0.3, 1.0, 3.0)
CONTROL_NAME = "DMSO"
CONTROL_MOA = "control"
CONTROL_ID = "DMSO"


@dataclass(frozen=True)
class Compound:
    """A synthetic compound and its phenotype.

    Attributes
    ----------
    broad_sample : str
        Compound identifier (``Metadata_broad_sample``), ``SYN-`` prefixed: these are not real Broad ids.
    pert_iname : str
        Compound name (``Metadata_pert_iname``); real compound names whose known effect resembles the phenotype.
    moa : str
        Phenotype class (``Metadata_moa``).
    description : str
        What the phenotype does to the images.
    ec50_um : float
        Dose of half-maximal strength (uM).
    hill : float
        Hill coefficient of the dose-response curve.
    """

    broad_sample: str
    pert_iname: str
    moa: str
    description: str
    ec50_um: float = 0.3
    hill: float = 1.0

    def strength(self, dose_um: float) -> float:
        """Phenotype strength in [0, 1): ``d^h / (d^h + ec50^h)``, 0 for dose 0, increasing with dose."""
        if dose_um <= 0:
            return 0.0
        dh = float(dose_um) ** self.hill
        return dh / (dh + self.ec50_um**self.hill)


COMPOUNDS: tuple[Compound, ...] = (
    Compound("SYN-0001", "aphidicolin", "nuclear_size", "enlarged nuclei: nuclear area x (1 + 2 s)"),
    Compound("SYN-0002", "bortezomib", "cell_count", "cytotoxic: fewer cells, some pyknotic nuclei"),
    Compound("SYN-0003", "CCCP", "mito_fragmentation", "tubular mitochondria fragment into perinuclear puncta"),
    Compound("SYN-0004", "thapsigargin", "er_intensity", "ER stress: ER brightness x (1 + 2 s)"),
    Compound("SYN-0005", "lysophosphatidic acid", "actin_stress_fibres", "RhoA activation: actin stress fibres"),
    Compound("SYN-0006", "CX-5461", "nucleolar_spots", "nucleolar fragmentation: more RNA spots per nucleus"),
)

MOAS: tuple[str, ...] = (CONTROL_MOA,) + tuple(c.moa for c in COMPOUNDS)


def compound_by_name(name: str) -> Compound | None:
    """The compound named ``name`` (pert_iname or broad_sample); ``None`` for DMSO."""
    if name in (CONTROL_NAME, CONTROL_ID, "", None):
        return None
    for c in COMPOUNDS:
        if name in (c.pert_iname, c.broad_sample):
            return c
    valid = ", ".join([CONTROL_NAME] + [c.pert_iname for c in COMPOUNDS])
    raise StratoNetError(f"unknown synthetic compound '{name}' (valid: {valid})")


@dataclass(frozen=True)
class Effects:
    """Phenotype parameters the renderer uses; the defaults are DMSO."""

    nuclear_area_fold: float = 1.0
    survival: float = 1.0
    pyknotic_fraction: float = 0.0
    mito_fragmentation: float = 0.0
    er_fold: float = 1.0
    fibre_amplitude: float = 0.15
    fibre_fraction: float = 0.3
    nucleoli_fold: float = 1.0

    @property
    def effect_size(self) -> dict[str, float]:
        """The parameters as a plain dict."""
        return dict(self.__dict__)


def effects_for(compound: Compound | None, dose_um: float) -> Effects:
    """Phenotype parameters for a compound at a dose (DMSO: ``compound=None``)."""
    if compound is None:
        return Effects()
    s = compound.strength(dose_um)
    if compound.moa == "nuclear_size":
        return Effects(nuclear_area_fold=1.0 + 2.0 * s)
    if compound.moa == "cell_count":
        return Effects(survival=1.0 - 0.85 * s, pyknotic_fraction=0.4 * s)
    if compound.moa == "mito_fragmentation":
        return Effects(mito_fragmentation=s)
    if compound.moa == "er_intensity":
        return Effects(er_fold=1.0 + 2.0 * s)
    if compound.moa == "actin_stress_fibres":
        return Effects(fibre_amplitude=0.15 + 2.5 * s, fibre_fraction=0.3 + 0.7 * s)
    if compound.moa == "nucleolar_spots":
        return Effects(nucleoli_fold=1.0 + 3.0 * s)
    raise StratoNetError(f"compound {compound.pert_iname}: unknown phenotype '{compound.moa}'")


def effect_summary(compound: Compound | None, dose_um: float) -> tuple[str, float]:
    """The headline effect of a treatment: (quantity, value), e.g. ``("nuclear_area_fold", 2.0)``."""
    e = effects_for(compound, dose_um)
    if compound is None:
        return ("none", 0.0)
    key = {
        "nuclear_size": "nuclear_area_fold",
        "cell_count": "survival",
        "mito_fragmentation": "mito_fragmentation",
        "er_intensity": "er_fold",
        "actin_stress_fibres": "fibre_amplitude",
        "nucleolar_spots": "nucleoli_fold",
    }[compound.moa]
    return key, float(getattr(e, key))
