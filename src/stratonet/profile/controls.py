"""Which rows are negative controls, and which columns name a treatment."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratonet.core.errors import StratoNetError

#: Compound-identity columns, most specific first.
COMPOUND_COLUMNS = [
    "Metadata_broad_sample", "Metadata_JCP2022", "Metadata_pert_iname", "Metadata_Compound", "Metadata_compound",
    "Metadata_Treatment", "Metadata_treatment",
]
#: Dose columns.
CONCENTRATION_COLUMNS = ["Metadata_concentration", "Metadata_Concentration", "Metadata_mmoles_per_liter", "Metadata_dose"]
#: Dose columns of a dose-response, most usual first; then any Metadata_dose* or *concentration* column.
DOSE_COLUMNS = CONCENTRATION_COLUMNS + ["Metadata_Dose", "Metadata_dose_index", "Metadata_dose_uM",
                                        "Metadata_mg_per_ml"]
#: Values that mark a negative control in a compound column.
NEGCON_NAMES = {"dmso", "negcon", "empty"}


def compound_column(df: pd.DataFrame) -> str | None:
    """The first compound-identity column present (see :data:`COMPOUND_COLUMNS`), or None."""
    return next((c for c in COMPOUND_COLUMNS if c in df.columns), None)


def concentration_column(df: pd.DataFrame) -> str | None:
    """The first dose column present, or None."""
    return next((c for c in CONCENTRATION_COLUMNS if c in df.columns), None)


def dose_column(df: pd.DataFrame) -> str | None:
    """The dose column of a dose-response: a known name (:data:`DOSE_COLUMNS`), else the first numeric
    ``Metadata_dose*``, ``Metadata_*concentration*`` or ``Metadata_*moles_per_liter*`` column; None if none."""
    known = next((c for c in DOSE_COLUMNS if c in df.columns), None)
    if known:
        return known
    for c in df.columns:
        low = str(c).lower()
        if low.startswith("metadata_") and (low.startswith("metadata_dose") or "concentration" in low
                                             or "moles_per_liter" in low):
            if pd.to_numeric(df[c], errors="coerce").notna().any():
                return str(c)
    return None


def treatment_columns(df: pd.DataFrame) -> list[str]:
    """Columns that define a treatment: compound (+ concentration when present).

    Raises
    ------
    StratoNetError
        If the table has no compound column.
    """
    comp = compound_column(df)
    if comp is None:
        from stratonet.core.controlnames import metadata_columns

        raise StratoNetError(
            f"no treatment column in table (expected one of {', '.join(COMPOUND_COLUMNS)}; Metadata columns: "
            f"{metadata_columns(df)}); name it with --treatment COLUMN (repeatable, e.g. a compound and a dose column)"
        )
    conc = concentration_column(df)
    return [comp] + ([conc] if conc else [])


def negcon_mask(df: pd.DataFrame, required: bool = True) -> np.ndarray:
    """Boolean mask of negative-control rows.

    ``Metadata_control_type == "negcon"`` when that column exists; otherwise a compound column equal to DMSO
    (case-insensitive).

    Parameters
    ----------
    df : DataFrame
    required : bool
        Raise if no negative control is found.
    """
    if "Metadata_control_type" in df.columns:
        mask = df["Metadata_control_type"].astype(str).str.lower().eq("negcon").to_numpy()
    else:
        mask = np.zeros(len(df), dtype=bool)
        for col in [c for c in COMPOUND_COLUMNS + ["Metadata_moa"] if c in df.columns]:
            mask |= df[col].astype(str).str.strip().str.lower().isin(NEGCON_NAMES).to_numpy()
    if required and not mask.any():
        from stratonet.core.controlnames import FIX, found_values, metadata_columns

        if "Metadata_control_type" in df.columns:
            found = f"Metadata_control_type has {found_values(df, 'Metadata_control_type')}"
        else:
            cols = [c for c in COMPOUND_COLUMNS + ["Metadata_moa"] if c in df.columns]
            found = ("; ".join(f"{c} has {found_values(df, c, 5)}" for c in cols) if cols
                     else f"no Metadata_control_type or compound column; Metadata columns: {metadata_columns(df)}")
        raise StratoNetError(
            f"no negative controls found (need Metadata_control_type == 'negcon' or a compound column equal to DMSO; "
            f"{found}); name them with {FIX} (profile without controls: --reference all)"
        )
    return mask
