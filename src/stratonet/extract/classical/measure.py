"""CellProfiler measurements through cp_measure, named as CellProfiler names them.

``<Compartment>_<Group>_<Feature>_<Channel>[_<params>]``, e.g. ``Cells_Intensity_MeanIntensity_DNA``,
``Nuclei_Texture_Contrast_DNA_3_00_256``, ``Cytoplasm_Granularity_1_AGP``, ``Cells_RadialDistribution_FracAtD_AGP_1of4``,
``Cells_Correlation_Correlation_DNA_AGP`` (CellProfiler's name for the Pearson correlation).

Images must be scaled to [0, 1] (uint16 / 65535).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from stratonet.core.tables import is_identifier  # noqa: F401  (the rule lives with the tables; importable here)

#: Measurement groups, in the order they are computed.
GROUPS = ["areashape", "intensity", "location", "radial", "texture", "granularity", "correlation", "neighbors"]
COMPARTMENTS = ["Nuclei", "Cells", "Cytoplasm"]


@dataclass
class MeasureParams:
    """Measurement settings.

    Defaults follow the JUMP CellProfiler pipeline where the cost allows (see README, section classical):
    texture at scales 3, 5 and 10 with 256 grey levels (as JUMP), granularity with a 16-step spectrum on the
    image subsampled to 1/4 (CellProfiler's own subsampling; JUMP: 16 steps), 4 radial bins on nuclei and cells
    (JUMP also measures the cytoplasm, whose "centre" lies in the nucleus hole).
    """

    texture_scales: tuple[int, ...] = (3, 5, 10)
    texture_gray_levels: int = 256
    granularity_spectrum: int = 16
    granularity_subsample: float = 0.25
    granularity_image_sample: float = 0.25
    granularity_element: int = 10
    radial_bins: int = 4
    radial_compartments: tuple[str, ...] = ("Nuclei", "Cells")
    zernike: bool = True
    costes: bool = False
    neighbors_distance: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


def parse_groups(spec: str | list[str] | None) -> list[str]:
    """``"all"``, ``None`` or a comma list of group names -> validated list (in canonical order)."""
    from stratonet.core.errors import ConfigError

    if spec is None or spec == "all" or spec == ["all"]:
        return list(GROUPS)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    items = [s.strip().lower() for s in items if s.strip()]
    bad = [s for s in items if s not in GROUPS]
    if bad:
        raise ConfigError(f"unknown feature group(s) {bad} (valid: {', '.join(GROUPS)}, or 'all')")
    return [g for g in GROUPS if g in items]


def _core():
    """cp_measure's per-object functions; its numba backend (same values, ~50x faster texture) when available."""
    import cp_measure
    from cp_measure.bulk import get_core_measurements

    try:
        import numba  # noqa: F401

        cp_measure.set_accelerator("numba")
    except ImportError:
        cp_measure.set_accelerator(None)
    return get_core_measurements(sanitize=False)


def _rename_core(key: str, compartment: str, channel: str) -> str:
    """cp_measure key of a per-channel function -> CellProfiler column name."""
    if key.startswith("Intensity_"):
        return f"{compartment}_Intensity_{key[len('Intensity_'):]}_{channel}"
    if key.startswith("Location_"):  # Location_CenterMassIntensity_X -> ..._X_DNA
        return f"{compartment}_{key}_{channel}"
    if key.startswith("RadialDistribution_"):
        parts = key.split("_")  # RadialDistribution_FracAtD_1of4 / RadialDistribution_ZernikeMagnitude_0_0
        return f"{compartment}_RadialDistribution_{parts[1]}_{channel}_{'_'.join(parts[2:])}"
    if key.startswith("Granularity_"):
        return f"{compartment}_{key}_{channel}"
    # texture: Contrast_3_00_256
    name, rest = key.split("_", 1)
    return f"{compartment}_Texture_{name}_{channel}_{rest}"


def measure_objects(
    labels: np.ndarray,
    image: np.ndarray,
    channels: list[str],
    compartment: str,
    groups: list[str],
    params: MeasureParams | None = None,
    granularity: dict[str, dict[str, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """Measure one compartment's objects on every channel.

    Parameters
    ----------
    labels : ndarray (H, W) of int
        Objects of this compartment (gaps allowed).
    image : ndarray (C, H, W), float in [0, 1]
    channels : list of str
        Channel names, in the order of ``image``.
    compartment : str
        ``Nuclei``, ``Cells`` or ``Cytoplasm`` (any name works).
    groups : list of str
        Subset of :data:`GROUPS`; ``neighbors`` is handled by :func:`measure_neighbors`.
    params : MeasureParams, optional
    granularity : dict, optional
        Precomputed granularity of this compartment, channel -> {``Granularity_i``: values per object}, as
        :func:`granularity_by_compartment` returns it; otherwise computed here.

    Returns
    -------
    DataFrame indexed by the object's label (``ObjectNumber``), CellProfiler column names.
    """
    from cp_measure._sanitize import sanitize_masks

    p = params or MeasureParams()
    clean, ids = sanitize_masks(np.asarray(labels))
    index = pd.Index(ids, name="ObjectNumber")
    if ids.size == 0:
        return pd.DataFrame(index=index)
    core = _core()
    cols: dict[str, np.ndarray] = {}
    c = compartment
    # Location_Center is always measured: it links the table to the image.
    centers = np.array(ndi.center_of_mass(np.ones_like(clean), clean, np.arange(1, ids.size + 1)))
    cols[f"{c}_Location_Center_X"] = centers[:, 1]
    cols[f"{c}_Location_Center_Y"] = centers[:, 0]
    if "areashape" in groups:
        # Degenerate objects (a perimeter of 0) divide by zero inside cp_measure; the infs are set to NaN
        # and counted by the caller (see stratonet.extract.classical.run.nonfinite_to_nan).
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            shape = dict(core["sizeshape"](clean, None))
            if p.zernike:
                shape.update(core["zernike"](clean, None))
            shape.update(core["feret"](clean, None))
        for k, v in shape.items():
            cols[f"{c}_AreaShape_{k}"] = v
    per_channel = []
    if "intensity" in groups or "location" in groups:
        per_channel.append(("intensity", {}))
    if "radial" in groups and compartment in p.radial_compartments:
        per_channel.append(("radial_distribution", {"bin_count": p.radial_bins}))
    if "texture" in groups:
        for s in p.texture_scales:
            per_channel.append(("texture", {"scale": int(s), "gray_levels": p.texture_gray_levels}))
    if "granularity" in groups and granularity is None:
        per_channel.append(("granularity", _granularity_kwargs(p)))
    for ci, ch in enumerate(channels):
        px = image[ci]
        for fname, kw in per_channel:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out = core[fname](clean, px, **kw)
            for k, v in out.items():
                if k.endswith("_Z"):  # 2-D images: the Z coordinates are all zero
                    continue
                if k.startswith("Location_") and "location" not in groups:
                    continue
                if k.startswith("Intensity_") and "intensity" not in groups:
                    continue
                cols[_rename_core(k, c, ch)] = v
    if "granularity" in groups and granularity is not None:
        for ch in channels:
            for k, v in granularity[ch].items():
                cols[f"{c}_{k}_{ch}"] = v
    if "correlation" in groups and len(channels) > 1:
        cols.update(_correlation(clean, image, channels, c, p))
    return pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in cols.items()}, index=index)


def _granularity_kwargs(p: MeasureParams) -> dict:
    return {
        "subsample_size": p.granularity_subsample, "image_sample_size": p.granularity_image_sample,
        "element_size": p.granularity_element, "granular_spectrum_length": p.granularity_spectrum,
    }


def granularity_by_compartment(
    masks: dict[str, np.ndarray], pixels: np.ndarray, params: MeasureParams | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """Granularity spectra of nuclei, cells and cytoplasm from one granulometry of the image.

    CellProfiler computes the granular spectrum of the image once and then averages each opened image
    over every object. cp_measure's ``get_granularity`` redoes the whole-image spectrum for each label image,
    so here it is called once on the *pieces* (every distinct (cell, nucleus) pair of labels): each step's
    per-object mean is linear in the pixels, so the means of nuclei, cells and cytoplasm are exact
    area-weighted sums of their pieces' means. Values equal three separate calls (to float round-off)
    at a third of the cost.

    Returns
    -------
    dict compartment -> {``Granularity_i``: ndarray over that compartment's labels 1..N, in label order
    of the labels present}
    """
    from cp_measure.bulk import get_core_measurements

    p = params or MeasureParams()
    cells = np.asarray(masks["Cells"]).astype(np.int64)
    nuclei = np.asarray(masks["Nuclei"]).astype(np.int64)
    code = cells * (int(nuclei.max()) + 1) + nuclei
    uniq, pieces = np.unique(code, return_inverse=True)
    pieces = pieces.reshape(code.shape)
    if uniq[0] == 0:  # background stays 0
        piece_ids = uniq[1:]
    else:
        piece_ids = uniq
        pieces = pieces + 1
    piece_cell = piece_ids // (int(nuclei.max()) + 1)
    piece_nuc = piece_ids % (int(nuclei.max()) + 1)
    n_pieces = len(piece_ids)
    area = np.bincount(pieces.ravel(), minlength=n_pieces + 1)[1:].astype(float)
    fn = get_core_measurements(sanitize=False)["granularity"]
    start = np.asarray(ndi.sum(pixels, pieces, np.arange(1, n_pieces + 1)), float) / np.maximum(area, 1)
    gss = fn(pieces, pixels, **_granularity_kwargs(p))
    keys = list(gss)
    steps = np.stack([np.asarray(gss[k], float) for k in keys])  # (S, pieces)
    start_eps = np.maximum(start, np.finfo(float).eps)
    means = np.vstack([start, start_eps * (1 - np.cumsum(steps, axis=0) / 100.0)])  # (S+1, pieces)
    # Raw per-step sums of each piece, then summed into compartments.
    sums = means * area

    def combine(owner: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
        ids = np.unique(labels[labels > 0])
        out = {k: np.full(ids.size, np.nan) for k in keys}
        if ids.size == 0:
            return out
        pos = np.searchsorted(ids, owner)
        valid = (owner > 0) & (pos < ids.size)
        valid[valid] &= ids[pos[valid]] == owner[valid]
        tot = np.zeros((sums.shape[0], ids.size))
        cnt = np.zeros(ids.size)
        np.add.at(tot.T, pos[valid], sums[:, valid].T)
        np.add.at(cnt, pos[valid], area[valid])
        m = tot / np.maximum(cnt, 1)
        m0 = np.maximum(m[0], np.finfo(float).eps)
        for i, k in enumerate(keys):
            out[k] = (m[i] - m[i + 1]) * 100.0 / m0
        return out

    cyto_owner = np.where(piece_nuc == 0, piece_cell, 0)
    return {
        "Cells": combine(piece_cell, cells),
        "Nuclei": combine(piece_nuc, nuclei),
        "Cytoplasm": combine(cyto_owner, np.asarray(masks["Cytoplasm"])),
    }


def _correlation(labels, image, channels, c, p: MeasureParams) -> dict[str, np.ndarray]:
    """Pearson (CellProfiler's Correlation_Correlation) and slope, Manders, RWC and optionally Costes per pair."""
    from cp_measure.bulk import get_correlation_measurements

    f = get_correlation_measurements(sanitize=False)
    cols: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, j in itertools.combinations(range(len(channels)), 2):
            a, b = channels[i], channels[j]
            x, y = image[i], image[j]
            r = f["pearson"](x, y, labels)
            cols[f"{c}_Correlation_Correlation_{a}_{b}"] = r["Correlation_Pearson"]
            cols[f"{c}_Correlation_Slope_{a}_{b}"] = r["Correlation_Slope"]
            m = f["manders_fold"](x, y, labels)
            cols[f"{c}_Correlation_Manders_{a}_{b}"] = m["Correlation_Manders_1"]
            cols[f"{c}_Correlation_Manders_{b}_{a}"] = m["Correlation_Manders_2"]
            w = f["rwc"](x, y, labels)
            cols[f"{c}_Correlation_RWC_{a}_{b}"] = w["Correlation_RWC_1"]
            cols[f"{c}_Correlation_RWC_{b}_{a}"] = w["Correlation_RWC_2"]
            if p.costes:
                k = f["costes"](x, y, labels, scale_max=65535)
                cols[f"{c}_Correlation_Costes_{a}_{b}"] = k["Correlation_Costes_1"]
                cols[f"{c}_Correlation_Costes_{b}_{a}"] = k["Correlation_Costes_2"]
    return cols


def measure_neighbors(labels: np.ndarray, compartment: str, distance: int | None) -> pd.DataFrame:
    """CellProfiler's MeasureObjectNeighbors (via cp_measure) of a compartment against itself.

    ``distance`` None -> "Adjacent" (suffix ``_Adjacent``), else "Within a specified distance" (suffix
    ``_<distance>``), e.g. ``Nuclei_Neighbors_NumberOfNeighbors_1``.
    """
    from cp_measure._sanitize import sanitize_masks
    from cp_measure.multimask.measureobjectneighbors import (
        D_ADJACENT,
        D_WITHIN,
        M_ANGLE_BETWEEN_NEIGHBORS,
        M_FIRST_CLOSEST_DISTANCE,
        M_FIRST_CLOSEST_OBJECT_NUMBER,
        M_NUMBER_OF_NEIGHBORS,
        M_PERCENT_TOUCHING,
        M_SECOND_CLOSEST_DISTANCE,
        M_SECOND_CLOSEST_OBJECT_NUMBER,
        get_measurement_name,
        measureobjectneighbors,
    )

    clean, ids = sanitize_masks(np.asarray(labels))
    index = pd.Index(ids, name="ObjectNumber")
    if ids.size == 0:
        return pd.DataFrame(index=index)
    method = D_ADJACENT if distance is None else D_WITHIN
    if ids.size == 1:
        # A lone object has no neighbour: CellProfiler records 0 for every neighbour measurement
        # (cp_measure itself fails on one object).
        order = [M_NUMBER_OF_NEIGHBORS, M_FIRST_CLOSEST_OBJECT_NUMBER, M_FIRST_CLOSEST_DISTANCE,
                 M_SECOND_CLOSEST_OBJECT_NUMBER, M_SECOND_CLOSEST_DISTANCE, M_ANGLE_BETWEEN_NEIGHBORS,
                 M_PERCENT_TOUCHING]  # cp_measure's order
        return pd.DataFrame(
            {f"{compartment}_{get_measurement_name(m, method, int(distance or 0))}": [0.0] for m in order},
            index=index,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = measureobjectneighbors(clean, clean, distance_method=method, distance=int(distance or 0))
    cols = {}
    for k, v in out.items():
        v = np.asarray(v, dtype=float)
        if "ObjectNumber" in k:  # neighbours are numbered 1..N after sanitising: map back to the labels
            v = np.where(v > 0, ids[np.clip(v.astype(int) - 1, 0, ids.size - 1)], 0).astype(float)
        cols[f"{compartment}_{k}"] = v
    return pd.DataFrame(cols, index=index)


def measure_site(
    image: np.ndarray,
    channels: list[str],
    masks: dict[str, np.ndarray],
    groups: list[str] | None = None,
    params: MeasureParams | None = None,
) -> pd.DataFrame:
    """Single-cell table of one site: one row per cell, with its nucleus's and cytoplasm's measurements.

    Parameters
    ----------
    image : ndarray (C, H, W), float in [0, 1]
    channels : list of str
    masks : dict
        ``Nuclei``, ``Cells`` and ``Cytoplasm`` label images. A cell's parent nucleus is the nucleus it
        overlaps most; the cytoplasm of cell k has label k.
    groups : list of str, optional
        Feature groups (default: all of :data:`GROUPS`).
    params : MeasureParams, optional

    Returns
    -------
    DataFrame with ``ObjectNumber`` (the cell's number), ``Cells_Parent_Nuclei``, ``Cytoplasm_Parent_Cells``,
    ``Cytoplasm_Parent_Nuclei``, ``Nuclei_Number_Object_Number`` and ``<Compartment>_<Group>_...`` features.
    Nuclei without a cell are not rows (they still count in ``Count_Nuclei``).
    """
    from stratonet.extract.classical.relate import parent_of

    groups = list(groups or GROUPS)
    p = params or MeasureParams()
    cells = masks["Cells"]
    nuclei = masks["Nuclei"]
    gran: dict[str, dict[str, dict[str, np.ndarray]]] = {comp: {} for comp in COMPARTMENTS}
    if "granularity" in groups:
        for ci, ch in enumerate(channels):
            for comp, vals in granularity_by_compartment(masks, image[ci], p).items():
                gran[comp][ch] = vals
    per = {}
    for comp in COMPARTMENTS:
        g = gran[comp] if "granularity" in groups else None
        df = measure_objects(masks[comp], image, channels, comp, groups, p, granularity=g)
        if "neighbors" in groups:
            dist = p.neighbors_distance if comp == "Nuclei" else None
            if comp != "Cytoplasm":
                df = df.join(measure_neighbors(masks[comp], comp, dist))
        per[comp] = df
    cell_ids = per["Cells"].index.to_numpy()
    parents = parent_of(cells, nuclei)
    parent_nuc = parents[cell_ids - 1] if cell_ids.size else np.zeros(0, int)
    out = pd.DataFrame({"ObjectNumber": cell_ids})
    out["Cells_Parent_Nuclei"] = parent_nuc
    out["Cytoplasm_Parent_Cells"] = cell_ids
    out["Cytoplasm_Parent_Nuclei"] = parent_nuc
    out["Nuclei_Number_Object_Number"] = parent_nuc
    cells_df = per["Cells"].reset_index(drop=True)
    nuc_df = per["Nuclei"].reindex(parent_nuc).reset_index(drop=True)
    cyto_df = per["Cytoplasm"].reindex(cell_ids).reset_index(drop=True)
    return pd.concat([out, nuc_df, cells_df, cyto_df], axis=1)
