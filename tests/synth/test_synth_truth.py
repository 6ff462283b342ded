"""Ground truth of the synthetic phenotypes, measured from the images with simple thresholding.

Each compound is rendered at 0 (DMSO), 0.3, 1 and 3 uM in the same well and sites (so only the treatment differs),
at 256 px (nucleoli also at 512 px); the measurement for its phenotype must move monotonically with dose, and stay
put for other compounds.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import feature, filters, measure

from stratonet.synth import COMPOUNDS, DOSES_UM, SynthParams, render_site

SIZE = 256
SITES = (1, 2, 3)
DOSES = (0.0,) + DOSES_UM


def measure_site(image: np.ndarray, truth) -> dict[str, float]:
    """Phenotype read-outs of one site: image thresholding plus the ground-truth cell masks for regions."""
    mito, agp, rna, er, dna = (c.astype(np.float32) for c in image)
    cells, nuclei = truth.cells, truth.nuclei
    cell = cells > 0
    cyto = cell & (nuclei == 0)

    def background(c):
        return float(np.median(c[~cell])) if (~cell).any() else 0.0

    # nuclei by Otsu thresholding of the DNA image
    d = ndi.gaussian_filter(dna, 1)
    areas = np.bincount(measure.label(d > filters.threshold_otsu(d)).ravel())[1:]
    areas = areas[areas >= 8]
    # nucleoli: local maxima of RNA inside nuclei brighter than 1.5x the cell's cytoplasmic RNA
    r = ndi.gaussian_filter(rna, 0.7)
    n_lab = int(nuclei.max())
    peaks = feature.peak_local_max(r, min_distance=1, labels=nuclei, exclude_border=False)
    cyto_ref = np.asarray(ndi.mean(r, np.where(nuclei > 0, 0, cells), index=np.arange(1, n_lab + 1)))
    owners = nuclei[peaks[:, 0], peaks[:, 1]]
    spots = int((r[peaks[:, 0], peaks[:, 1]] > 1.5 * cyto_ref[owners - 1]).sum())
    # mitochondrial texture: share of the cytoplasmic Mito signal in its brightest 5 % of pixels
    m = mito[cyto] - background(mito)
    top = np.sort(m)[-max(1, int(0.05 * m.size)):]
    # oriented texture in AGP: structure-tensor coherence in the cytoplasm
    arr, arc, acc = feature.structure_tensor(agp, sigma=2, order="rc")
    coherence = np.sqrt((arr - acc) ** 2 + 4 * arc**2) / np.maximum(arr + acc, 1e-6)
    return {
        "nuclear_area": float(areas.mean()),
        "cell_count": float(areas.size),
        "er_intensity": float(er[cell].mean() - background(er)),
        "nucleoli_per_nucleus": spots / max(1, n_lab),
        "mito_top5_share": float(top.sum() / m.sum()),
        "agp_coherence": float(coherence[cyto].mean()),
    }


READOUT = {  # phenotype -> (read-out, expected direction with dose)
    "nuclear_size": ("nuclear_area", +1),
    "cell_count": ("cell_count", -1),
    "er_intensity": ("er_intensity", +1),
    "nucleolar_spots": ("nucleoli_per_nucleus", +1),
    "mito_fragmentation": ("mito_top5_share", +1),
    "actin_stress_fibres": ("agp_coherence", +1),
}


@pytest.fixture(scope="module")
def readouts() -> dict[tuple[str, float], dict[str, float]]:
    """Mean read-outs over three sites for every compound x dose (dose 0 = DMSO)."""
    params = SynthParams(seed=11, size=SIZE)
    dmso = [measure_site(*render_site(params, "C04", s, masks=True)) for s in SITES]
    out = {}
    for comp in COMPOUNDS:
        for dose in DOSES:
            sites = dmso if dose == 0 else [
                measure_site(*render_site(params, "C04", s, treatment=comp.pert_iname, dose=dose, masks=True))
                for s in SITES]
            out[(comp.moa, dose)] = {k: float(np.mean([v[k] for v in sites])) for k in sites[0]}
    return out


def nucleoli_by_dose() -> list[float]:
    """Nucleoli per nucleus at 512 px: at 256 px the 7-8 spots of the top doses merge in ~12 px nuclei."""
    params = SynthParams(seed=11, size=512)
    comp = next(c for c in COMPOUNDS if c.moa == "nucleolar_spots")
    return [float(np.mean([measure_site(*render_site(params, "C04", s, treatment=comp.pert_iname if d else None,
                                                     dose=d, masks=True))["nucleoli_per_nucleus"]
                           for s in SITES[:2]])) for d in DOSES]


@pytest.mark.parametrize("moa", list(READOUT))
def test_phenotype_monotonic_with_dose(readouts, moa):
    key, sign = READOUT[moa]
    values = nucleoli_by_dose() if moa == "nucleolar_spots" else [readouts[(moa, d)][key] for d in DOSES]
    steps = np.diff(values) * sign
    assert np.all(steps > 0), f"{key} over doses {DOSES}: {values}"
    # even the lowest dose moves the read-out clearly (>= 10 % of the DMSO value)
    assert abs(values[1] - values[0]) >= 0.10 * abs(values[0]), values


@pytest.mark.parametrize("moa", list(READOUT))
def test_phenotypes_are_specific(readouts, moa):
    """At the top dose, a compound moves its own read-out far more than any other compound moves it."""
    key, _ = READOUT[moa]
    base = readouts[(moa, 0.0)][key]
    own = abs(readouts[(moa, DOSES[-1])][key] / base - 1)
    others = {m: abs(readouts[(m, DOSES[-1])][key] / base - 1) for m in READOUT if m != moa}
    assert own > 2 * max(others.values()), (key, own, others)


def test_masks_match_the_drawn_cells():
    img, truth = render_site(SynthParams(seed=2, size=SIZE), "B02", 1, masks=True)
    assert truth.n_cells == int(truth.nuclei.max())
    assert np.array_equal(np.bincount(truth.nuclei.ravel())[1:], truth.nuclear_area)
    # Otsu on DNA recovers the drawn nuclei (Dice > 0.85)
    d = ndi.gaussian_filter(img[4].astype(np.float32), 1)
    seg = d > filters.threshold_otsu(d)
    gt = truth.nuclei > 0
    assert 2 * (seg & gt).sum() / (seg.sum() + gt.sum()) > 0.85
