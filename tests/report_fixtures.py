"""Small hand-made profile tables (with known structure) for the embed, compare, taps and report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.core.tables import write_table

MOAS = ["control", "tubulin", "actin", "dna"]


def plate_metadata(n_plates: int = 2, wells_per_moa: int = 4) -> pd.DataFrame:
    """Well-level metadata: per plate, ``wells_per_moa`` wells of each MoA (DMSO controls for 'control')."""
    rows = []
    for p in range(n_plates):
        w = 0
        for moa in MOAS:
            for r in range(wells_per_moa):
                row, col = divmod(w, 12)
                compound = "DMSO" if moa == "control" else f"{moa}_cpd{r % 2}"
                rows.append({
                    "Metadata_Plate": f"P{p}", "Metadata_Well": f"{'ABCDEFGH'[row]}{col + 1:02d}",
                    "Metadata_pert_iname": compound, "Metadata_moa": moa,
                    "Metadata_control_type": "negcon" if moa == "control" else "trt",
                    "Metadata_concentration": 0.0 if moa == "control" else 1.0,
                })
                w += 1
    return pd.DataFrame(rows)


def features_for(meta: pd.DataFrame, names: list[str], signal: dict[str, float], seed: int) -> pd.DataFrame:
    """Gaussian features; feature i of class k gets an offset ``signal[name] * pattern[k, i]``."""
    rng = np.random.default_rng(seed)
    codes = pd.Categorical(meta["Metadata_moa"], categories=MOAS).codes
    pattern = rng.normal(size=(len(MOAS), len(names)))
    pattern[0] = 0.0  # controls carry no phenotype
    strength = np.array([signal.get(n, 0.0) for n in names])
    x = rng.normal(size=(len(meta), len(names))) + pattern[codes] * strength
    return pd.concat([meta.reset_index(drop=True), pd.DataFrame(x, columns=names)], axis=1)


def deep_table(meta: pd.DataFrame, taps: dict[str, float], per_tap: int = 8, channels=("DNA", "AGP"),
               seed: int = 0) -> pd.DataFrame:
    """Deep features ``<Channel>_<tap>_<i>``; each tap's class signal strength is given by ``taps``."""
    names, signal = [], {}
    for tap, s in taps.items():
        for ch in channels:
            for i in range(per_tap):
                n = f"{ch}_{tap}_{i:04d}"
                names.append(n)
                signal[n] = s
    return features_for(meta, names, signal, seed)


def classical_table(meta: pd.DataFrame, n: int = 30, informative: int = 10, seed: int = 1) -> pd.DataFrame:
    """CellProfiler-style features, the first ``informative`` of which carry class signal."""
    names = [f"Cells_Intensity_Feature{i:02d}_DNA" for i in range(n)]
    return features_for(meta, names, {nm: 2.0 for nm in names[:informative]}, seed)


def write(df: pd.DataFrame, path: Path, **provenance) -> Path:
    """Write a fixture table with provenance."""
    return write_table(df, path, provenance=provenance or None)


def demo_plate_sites(wells: int = 24, sites: int = 2) -> pd.DataFrame:
    """Site-level metadata shaped like the demo's synthetic plate: 6 DMSO wells, 3 MoAs x 2 compounds x 3 wells."""
    rows = []
    layout = ["control"] * 6 + [m for m in MOAS[1:] for _ in range(6)]
    for w in range(wells):
        moa = layout[w % len(layout)]
        cpd = "DMSO" if moa == "control" else f"{moa}_cpd{(w % 6) // 3}"
        for s in range(1, sites + 1):
            rows.append({
                "Metadata_Plate": "SYNTH1", "Metadata_Well": f"{'ABCD'[w // 6]}{w % 6 + 1:02d}", "Metadata_Site": s,
                "Metadata_broad_sample": cpd, "Metadata_pert_iname": cpd, "Metadata_moa": moa,
                "Metadata_concentration": 0.0 if moa == "control" else 1.0,
                "Metadata_control_type": "negcon" if moa == "control" else "trt",
            })
    return pd.DataFrame(rows)
