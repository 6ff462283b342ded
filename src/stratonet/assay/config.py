"""The options of :func:`stratonet.assay.evaluate.evaluate_assay` in one frozen object, and the control columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.assay.spec import ReadoutSpec
from stratonet.core.errors import StratoNetError

#: Fewer control wells of either kind than this is an error.
MIN_CONTROLS = 3


class AssayControlError(StratoNetError):
    """Too few control wells, or the control column is missing. The message names the column and the control."""


@dataclass
class Controls:
    """Which column and values mark the controls."""

    column: str = "Metadata_control_type"
    negcon: str = "negcon"
    poscon: str = "poscon"

    def masks(self, df: pd.DataFrame, where: str = "") -> tuple[np.ndarray, np.ndarray]:
        """Boolean negcon and poscon masks; one-line error naming the column/control when either has < 3 wells."""
        if self.column not in df.columns:
            meta = [c for c in df.columns if str(c).startswith("Metadata_")]
            raise AssayControlError(f"control column '{self.column}' not found{where} "
                                    f"(metadata columns: {', '.join(meta[:12])}; set --control-column)")
        values = df[self.column].astype(str).str.strip()
        neg = values.eq(str(self.negcon)).to_numpy()
        pos = values.eq(str(self.poscon)).to_numpy()
        for label, value, mask in (("negative", self.negcon, neg), ("positive", self.poscon, pos)):
            if mask.sum() < MIN_CONTROLS:
                found = ", ".join(f"{k}: {v}" for k, v in values.value_counts().head(8).items())
                raise AssayControlError(
                    f"column '{self.column}'{where}: {int(mask.sum())} {label}-control wells "
                    f"('{value}'), need at least {MIN_CONTROLS} (values found: {found}); name the controls with "
                    "--negcon VALUE --poscon VALUE, --control-column or --controls FILE")
        return neg, pos


@dataclass(frozen=True)
class AssayConfig:
    """How a plate is scored; built once by ``stratonet evaluate assay``, the demo or the Python caller.

    Attributes
    ----------
    features : list of str, optional
        Feature columns (default: every non-``Metadata_`` numeric column).
    readouts : list of ReadoutSpec, optional
        Readouts whose control statistics are reported; the first one is the primary readout used for the dose
        curves and hits (default: ``nested``, an L2 logistic axis whose number of features, C and scaling are
        chosen by nested cross-validation inside the controls, beside the fixed ``reference`` readout; see
        :mod:`stratonet.assay.nested`). The primary readout's Z' is compared with every other readout's by a
        paired bootstrap; a difference whose 95 % interval excludes 0 is a warning (``readout_agreement``).
    controls : Controls, optional
        Control column and its negcon / poscon values (default ``Metadata_control_type`` negcon / poscon).
    plate_column : str
        Plate column; a table without it is one plate.
    compound_column : str, optional
        Compound column of the dose curves (default: the first of the usual compound columns present; with a dose
        column and none of them, one curve over all sample wells, named ``(all sample wells)``, with a warning).
    dose_column : str, optional
        Dose column (default ``Metadata_concentration`` or another concentration column, else the one numeric
        ``Metadata_*dose*`` column such as ``Metadata_dose_index``; none: no dose curves).
    dose_scale : {"auto", "log", "linear"}
        See :func:`stratonet.assay.evaluate.default_dose`.
    treatment : list of str, optional
        Columns naming a treatment for the hits-vs-mAP table (default compound + dose column).
    fdr : float
        BH false-discovery rate of the hit calls.
    p_method : {"empirical", "gaussian"}
        p-values of the hits against the negcon null.
    n_boot : int
        Bootstrap resamples of each 4PL fit.
    with_map : bool
        Also compute copairs' phenotypic-activity mAP per treatment (side by side with the hits).
    null_size, seed : int
        copairs' null size; the seed of every resampling.
    """

    features: Sequence[str] | None = None
    readouts: Sequence[ReadoutSpec] | None = None
    controls: Controls | None = None
    plate_column: str = "Metadata_Plate"
    compound_column: str | None = None
    dose_column: str | None = None
    dose_scale: str = "auto"
    treatment: Sequence[str] | None = None
    fdr: float = 0.05
    p_method: str = "empirical"
    n_boot: int = 200
    with_map: bool = True
    null_size: int = 10000
    seed: int = 0
