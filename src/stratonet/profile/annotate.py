"""Join plate-map annotations (treatment, MoA, control type) onto profiles."""

from __future__ import annotations

import pandas as pd

from stratonet.core.errors import StratoNetError
from stratonet.index.metadata import same_but_case
from stratonet.index.schema import normalise_well
from stratonet.core.progress import warn

_WELL_ALIASES = ["Metadata_Well", "well_position", "Metadata_well_position", "Well", "well"]
_PLATE_ALIASES = ["Metadata_Plate", "plate", "Plate", "plate_map_name"]


def annotate(df: pd.DataFrame, platemap: pd.DataFrame, overwrite: bool = True) -> pd.DataFrame:
    """Add the columns of a plate map to profiles, joined on well (and plate when the map has one).

    Parameters
    ----------
    df : DataFrame
        Profiles with ``Metadata_Well`` (and ``Metadata_Plate``).
    platemap : DataFrame
        One row per well. The well column may be named ``well_position`` / ``Metadata_well_position`` /
        ``Metadata_Well``; columns without a ``Metadata_`` prefix get one.
    overwrite : bool
        Replace profile columns of the same name with the plate map's, saying so (default); False refuses,
        naming the columns. A plate-map column that differs from a profile column only in case (``plate`` vs
        ``Metadata_Plate``) is taken as that column, never added beside it.

    Returns
    -------
    DataFrame
        Same rows and order as ``df``, plus the plate-map columns.
    """
    if "Metadata_Well" not in df.columns:
        raise StratoNetError("cannot annotate: profiles have no Metadata_Well column")
    pm = platemap.copy()
    well_col = next((c for c in _WELL_ALIASES if c in pm.columns), None)
    if well_col is None:
        raise StratoNetError(f"platemap has no well column (expected one of {', '.join(_WELL_ALIASES)})")
    pm = pm.rename(columns={well_col: "Metadata_Well"})
    plate_col = next((c for c in _PLATE_ALIASES if c in pm.columns and c != "plate_map_name"), None)
    if plate_col:
        pm = pm.rename(columns={plate_col: "Metadata_Plate"})
    pm = pm.rename(columns={c: c if str(c).startswith("Metadata_") else f"Metadata_{c}" for c in pm.columns})
    pm = pm.rename(columns=same_but_case(pm.columns, df.columns))
    pm["Metadata_Well"] = pm["Metadata_Well"].map(normalise_well)
    keys = ["Metadata_Plate", "Metadata_Well"] if "Metadata_Plate" in pm.columns else ["Metadata_Well"]
    if pm.duplicated(keys).any():
        raise StratoNetError(f"platemap has duplicate rows for {'/'.join(keys)}")
    clash = [c for c in pm.columns if c not in keys and c in df.columns]
    if clash and not overwrite:
        raise StratoNetError(f"platemap column(s) {', '.join(clash)} already in the profiles; drop them from the "
                             "platemap or let the platemap replace them")
    if clash:
        warn(f"platemap replaces the profiles' {', '.join(clash)} (values from the platemap)")
    new = [c for c in pm.columns if c not in keys]
    left = df.drop(columns=[c for c in new if c in df.columns])
    left_keys = left[keys].copy()
    left_keys["Metadata_Well"] = left_keys["Metadata_Well"].map(normalise_well)
    joined = left_keys.merge(pm[keys + new], on=keys, how="left", indicator=True)
    unmatched = int((joined["_merge"] == "left_only").sum())
    if unmatched == len(joined) and len(joined):
        raise StratoNetError(f"platemap matches no row on {'/'.join(keys)} (profiles e.g. "
                             f"{', '.join(left_keys.astype(str).agg('/'.join, axis=1).unique()[:3])}; platemap e.g. "
                             f"{', '.join(pm[keys].astype(str).agg('/'.join, axis=1).unique()[:3])})")
    if unmatched:
        warn(f"platemap has no row for {unmatched} of {len(joined)} profile rows: their {', '.join(new[:3])} "
             "are left empty")
    out = left.copy()
    for c in new:
        out[c] = joined[c].to_numpy()
    return out

