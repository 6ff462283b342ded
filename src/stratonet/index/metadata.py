"""Join plate maps and compound metadata onto an index, following the JUMP metadata formats.

- platemap (tsv/txt/csv): ``well_position``, ``broad_sample``, ``solvent``, ... (one file for all plates), or
- barcode_platemap.csv: ``Assay_Plate_Barcode``, ``Plate_Map_Name``; each plate's map is
  ``<Plate_Map_Name>.txt|.tsv|.csv`` found in the platemap folder, the barcode file's folder or its ``platemap/``.
- compound metadata (tsv keyed by ``broad_sample``): ``pert_iname``, ``control_type``, ``moa`` / ``target``, ...

Joined columns get the ``Metadata_`` prefix. A well with no ``broad_sample`` and solvent DMSO becomes
``Metadata_pert_iname = "DMSO"``, ``Metadata_control_type = "negcon"``; a treated well without a control type
gets ``"trt"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.errors import InputFileError
from stratonet.index.schema import normalise_well
from stratonet.core.tables import read_table

_MAP_SUFFIXES = (".txt", ".tsv", ".csv")


def _read_any(path: Path) -> pd.DataFrame:
    """Read a csv/tsv/txt table (separator sniffed from the header line)."""
    if not path.exists():
        raise InputFileError(str(path), "file not found")
    if path.suffix.lower() in (".parquet", ".gz"):
        return read_table(path)
    head = path.open("r", errors="replace").readline()
    sep = "\t" if head.count("\t") >= head.count(",") else ","
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:
        raise InputFileError(str(path), f"cannot read table ({type(exc).__name__}: {exc})") from exc


def _prefixed(df: pd.DataFrame, skip: tuple[str, ...] = ()) -> pd.DataFrame:
    return df.rename(columns={c: c if c.startswith("Metadata_") or c in skip else f"Metadata_{c}" for c in df.columns})


def read_platemap(path: str | Path) -> pd.DataFrame:
    """A JUMP platemap -> ``Metadata_Well`` + ``Metadata_<column>`` for every other column."""
    path = Path(path)
    pm = _read_any(path)
    well_col = next((c for c in ("well_position", "Metadata_Well", "Well", "well") if c in pm.columns), None)
    if well_col is None:
        raise InputFileError(str(path), "platemap has no well_position column")
    pm = pm.copy()
    try:
        pm["Metadata_Well"] = [normalise_well(w) for w in pm[well_col]]
    except Exception as exc:
        raise InputFileError(str(path), str(exc)) from exc
    pm = pm.drop(columns=[well_col] if well_col != "Metadata_Well" else [])
    return _prefixed(pm)


def _find_platemap(name: str, folders: list[Path], barcode_file: Path) -> Path:
    for folder in folders:
        for suffix in _MAP_SUFFIXES:
            p = folder / f"{name}{suffix}"
            if p.exists():
                return p
    where = ", ".join(str(f) for f in folders)
    raise InputFileError(str(barcode_file), f"platemap '{name}' not found (looked for {name}.txt/.tsv/.csv in {where})")


def join_platemaps(
    index: pd.DataFrame,
    platemap: str | Path | None = None,
    barcode_platemap: str | Path | None = None,
) -> pd.DataFrame:
    """Add platemap columns to each site by plate and well.

    Raises
    ------
    InputFileError
        If a platemap matches no well of the index, or a plate has no entry in the barcode file.
    """
    if platemap is None and barcode_platemap is None:
        return index
    maps: dict[str, tuple[Path, pd.DataFrame]] = {}
    if barcode_platemap is not None:
        bfile = Path(barcode_platemap)
        bp = _read_any(bfile)
        if not {"Assay_Plate_Barcode", "Plate_Map_Name"} <= set(bp.columns):
            raise InputFileError(str(bfile), "barcode platemap needs columns Assay_Plate_Barcode and Plate_Map_Name")
        folders = ([Path(platemap)] if platemap is not None and Path(platemap).is_dir() else []) + [
            bfile.parent, bfile.parent / "platemap"
        ]
        names = dict(zip(bp["Assay_Plate_Barcode"].astype(str), bp["Plate_Map_Name"].astype(str)))
        for plate in index["Metadata_Plate"].astype(str).unique():
            if plate not in names:
                raise InputFileError(str(bfile), f"plate '{plate}' has no entry (Assay_Plate_Barcode)")
            p = _find_platemap(names[plate], folders, bfile)
            maps[plate] = (p, read_platemap(p))
    else:
        p = Path(platemap)
        pm = read_platemap(p)
        maps = {plate: (p, pm) for plate in index["Metadata_Plate"].astype(str).unique()}
    parts = []
    replaced: set[str] = set()
    for plate, sites in index.groupby(index["Metadata_Plate"].astype(str), sort=False):
        path, pm = maps[plate]
        pm = _rows_of_plate(pm.rename(columns=same_but_case(pm.columns, index.columns)), plate, path)
        if not set(sites["Metadata_Well"]) & set(pm["Metadata_Well"]):
            raise InputFileError(
                str(path), f"platemap matches no well of plate '{plate}' (index wells e.g. {sorted(sites['Metadata_Well'])[:3]})"
            )
        replaced |= {c for c in pm.columns if c in sites.columns and c not in ("Metadata_Well", "Metadata_Plate")}
        parts.append(_merge_keep_existing(sites, pm.drop(columns=["Metadata_Plate"], errors="ignore"),
                                          on=["Metadata_Well"], prefer="right"))
    if replaced:
        from stratonet.core.progress import warn

        warn(f"platemap replaces the index's {', '.join(sorted(replaced))} where it has a value")
    out = pd.concat(parts).loc[index.index] if parts else index
    return out


def same_but_case(new_columns, existing) -> dict[str, str]:
    """``{new: existing}`` for columns equal to an existing one but for case (``Metadata_plate`` -> ``Metadata_Plate``),
    so that a join never adds a second version of a column."""
    lower = {str(c).lower(): c for c in existing}
    return {c: lower[str(c).lower()] for c in new_columns if c not in existing and str(c).lower() in lower}


def _rows_of_plate(pm: pd.DataFrame, plate: str, path) -> pd.DataFrame:
    """A platemap's rows for ``plate`` when it has a plate column (all rows otherwise)."""
    if "Metadata_Plate" not in pm.columns:
        return pm
    rows = pm[pm["Metadata_Plate"].astype(str) == plate]
    if rows.empty:
        found = ", ".join(map(str, pm["Metadata_Plate"].astype(str).unique()[:5]))
        raise InputFileError(str(path), f"platemap has no row for plate '{plate}' (its plates: {found}); rename the "
                                        "plate with index --plate or drop the platemap's plate column")
    return rows


def _merge_keep_existing(left: pd.DataFrame, right: pd.DataFrame, on: list[str], prefer: str = "left") -> pd.DataFrame:
    """Left join; a column present on both sides keeps the ``prefer`` side's value where it is set."""
    right = right.drop_duplicates(on)
    merged = (
        left.rename_axis("__row").reset_index()
        .merge(right, on=on, how="left", suffixes=("", "__new"))
        .set_index("__row")
    )
    for c in [c for c in merged.columns if c.endswith("__new")]:
        base = c[: -len("__new")]
        if prefer == "right":
            merged[base] = merged[c].where(merged[c].notna(), merged[base])
        else:
            merged[base] = merged[base].where(merged[base].notna(), merged[c])
        merged = merged.drop(columns=c)
    merged.index.name = left.index.name
    merged = merged.astype({c: object for c in right.columns if c not in on and c in merged and c not in left})
    return merged


def join_compounds(index: pd.DataFrame, compound_metadata: str | Path | None = None) -> pd.DataFrame:
    """Add compound metadata by ``Metadata_broad_sample`` and fill DMSO / treatment labels."""
    out = index.copy()
    if compound_metadata is not None:
        path = Path(compound_metadata)
        cm = _read_any(path)
        if "broad_sample" not in cm.columns:
            raise InputFileError(str(path), "compound metadata has no broad_sample column")
        if "Metadata_broad_sample" not in out.columns:
            raise InputFileError(str(path), "the index has no Metadata_broad_sample to join compound metadata on (add --platemap)")
        cm = _prefixed(cm)
        out = _merge_keep_existing(out, cm, on=["Metadata_broad_sample"])
    return fill_controls(out)


def fill_controls(index: pd.DataFrame) -> pd.DataFrame:
    """Empty ``broad_sample`` with solvent DMSO -> pert_iname "DMSO", control_type "negcon"; treated -> "trt"."""
    if "Metadata_broad_sample" not in index.columns:
        return index
    out = index.copy()
    bs = out["Metadata_broad_sample"]
    empty = bs.isna() | (bs.astype(str).str.strip() == "")
    solvent = out["Metadata_solvent"].astype(str) if "Metadata_solvent" in out else pd.Series("DMSO", index=out.index)
    dmso = empty & (solvent.str.upper() == "DMSO")
    for col in ("Metadata_pert_iname", "Metadata_control_type"):
        if col not in out:
            out[col] = np.nan
        out[col] = out[col].astype(object)
    out.loc[dmso, "Metadata_pert_iname"] = "DMSO"
    out.loc[dmso, "Metadata_control_type"] = "negcon"
    ct = out["Metadata_control_type"]
    unset = ct.isna() | ct.astype(str).str.strip().isin(["", "NA", "nan"])
    out.loc[~empty & unset, "Metadata_control_type"] = "trt"
    return out
