"""Render one synthetic Cell Painting site: five 16-bit channels plus ground-truth masks.

The drawing is vectorised: nuclei are painted in small bounding boxes, everything else is computed full-frame from
a few per-pixel maps (the owning cell of every pixel, the distance from its nucleus, smooth noise fields) and
per-cell parameter lookups. A 1080 x 1080 site takes a few hundred milliseconds on one core.

Determinism: every random draw comes from ``numpy.random.SeedSequence([seed, plate, row, col, site])``, so a site's
image depends only on the generator parameters, its position and its treatment, never on how many wells or sites
are generated around it.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from stratonet.core.errors import StratoNetError
from stratonet.synth.compounds import Compound, Effects, compound_by_name, effects_for
from stratonet.synth.layout import CHANNELS, PLATE_FORMATS, plate_key

GENERATOR_VERSION = "1"
REFERENCE_SIZE = 1080  # JUMP Phenix field size; cell sizes are given for it


@dataclass(frozen=True)
class SynthParams:
    """Generator parameters of a plate (everything that decides the pixels).

    Attributes
    ----------
    seed, plate : int, str
        Seed and plate name; together with the well and site they seed every random draw.
    size : int
        Image height and width in pixels.
    plate_format : int
        96 or 384 (edge wells and gradients of the plate effect follow it).
    cell_scale : float, optional
        Pixel scale of cells relative to a 1080 px JUMP site. Default ``sqrt(size / 1080)``: a smaller image shows
        somewhat smaller cells *and* a smaller field, so a 256 px site still holds about 35 segmentable cells.
    cells_per_site : float
        Mean number of DMSO cells in a 1080 px site at scale 1 (scales with the field area in cell units).
    nucleus_radius_px : float
        Mean equivalent nuclear radius at scale 1.
    levels, background : dict
        Mean signal (ADU above background) per channel and autofluorescence background (ADU).
    gain, offset_adu, read_noise_e : float
        Camera: ADU per photo-electron, dark offset, Gaussian read noise (electrons).
    edge_factor, column_gradient, row_gradient, well_jitter : float
        Plate effect: intensity factor of edge wells, relative change across columns and rows, per-well lognormal sd.
    vignette : tuple of float
        Range of the radial fall-off of the illumination (fraction lost in the corners), drawn per channel per plate.
    """

    seed: int = 0
    plate: str = "SYNTH"
    size: int = REFERENCE_SIZE
    plate_format: int = 96
    cell_scale: float | None = None
    cells_per_site: float = 200.0
    nucleus_radius_px: float = 12.0
    levels: dict = field(default_factory=lambda: {"Mito": 5000.0, "AGP": 4500.0, "RNA": 4000.0, "ER": 5000.0,
                                                  "DNA": 14000.0})
    background: dict = field(default_factory=lambda: {"Mito": 300.0, "AGP": 450.0, "RNA": 400.0, "ER": 350.0,
                                                      "DNA": 250.0})
    gain: float = 2.0
    offset_adu: float = 100.0
    read_noise_e: float = 3.0
    edge_factor: float = 0.85
    column_gradient: float = 0.08
    row_gradient: float = 0.04
    well_jitter: float = 0.03
    vignette: tuple = (0.25, 0.4)

    def __post_init__(self):
        if int(self.size) < 64:
            raise StratoNetError(f"--size {self.size}: images must be at least 64 px")
        if self.plate_format not in PLATE_FORMATS:
            raise StratoNetError(f"plate format {self.plate_format}: use 96 or 384")

    def __hash__(self):  # dict fields: hash the plain-data form (used by the vignette cache)
        return hash(repr(self.to_dict()))

    @property
    def scale(self) -> float:
        """Pixel scale of cells relative to a 1080 px site."""
        return float(self.cell_scale) if self.cell_scale else math.sqrt(self.size / REFERENCE_SIZE)

    def to_dict(self) -> dict:
        """Plain-data form (for synth.json)."""
        d = asdict(self)
        d["vignette"] = list(self.vignette)
        d["scale"] = self.scale
        d["generator_version"] = GENERATOR_VERSION
        return d


@dataclass
class SiteTruth:
    """Ground truth of a rendered site.

    Attributes
    ----------
    nuclei, cells : ndarray of int32, (H, W)
        Label images (0 = background); label ``i`` is the same cell in both.
    nuclear_area : ndarray
        Nuclear area in pixels per label (index ``i - 1``).
    nucleoli : ndarray
        Number of nucleoli drawn per cell.
    pyknotic : ndarray of bool
        Pyknotic (dying) cells.
    fibre_amplitude : ndarray
        Stress-fibre amplitude per cell (relative to the cell's AGP level).
    mito_fragmentation : ndarray
        Fragmentation mix per cell (0 tubular, 1 punctate).
    effects : Effects
        The treatment's phenotype parameters.
    """

    nuclei: np.ndarray
    cells: np.ndarray
    nuclear_area: np.ndarray
    nucleoli: np.ndarray
    pyknotic: np.ndarray
    fibre_amplitude: np.ndarray
    mito_fragmentation: np.ndarray
    effects: Effects

    @property
    def n_cells(self) -> int:
        return int(self.nuclear_area.size)


_WELL = re.compile(r"^([A-Za-z]{1,2})0*(\d{1,2})$")


def parse_well(well: str) -> tuple[int, int]:
    """``A01`` -> (1, 1); ``P24`` -> (16, 24)."""
    m = _WELL.match(str(well).strip())
    if not m:
        raise StratoNetError(f"cannot parse well name '{well}' (expected e.g. A01)")
    letters = m.group(1).upper()
    row = ord(letters[-1]) - 64 + (26 * (ord(letters[0]) - 64) if len(letters) == 2 else 0)
    return row, int(m.group(2))


def render_site(spec_or_params, well: str, site: int, *, treatment: str | None = None, dose: float = 0.0,
                masks: bool = False):
    """Render one site in memory.

    Parameters
    ----------
    spec_or_params : PlateSpec or SynthParams
        A plate (the well's treatment comes from its platemap) or bare generator parameters.
    well : str
        Well name, e.g. ``"A01"``.
    site : int
        Site (field) number, 1-based.
    treatment : str, optional
        With ``SynthParams`` only: compound name or id (default DMSO). Ignored for a ``PlateSpec``.
    dose : float
        With ``SynthParams`` only: dose in uM.
    masks : bool
        Also return the :class:`SiteTruth` (labels and per-cell ground truth).

    Returns
    -------
    ndarray of uint16, (5, H, W)
        Channels in Phenix order ch1..ch5 = Mito, AGP, RNA, ER, DNA (see ``CHANNELS``).
    SiteTruth
        Only when ``masks=True``.
    """
    if isinstance(spec_or_params, SynthParams):
        params = spec_or_params
        compound = compound_by_name(treatment) if treatment else None
        dose = float(dose) if compound is not None else 0.0
    else:  # PlateSpec
        params = spec_or_params.params
        ws = spec_or_params.well(well)
        compound, dose = ws.compound, ws.concentration
    row, col = parse_well(well)
    rows, cols = PLATE_FORMATS[params.plate_format]
    if not (1 <= row <= rows and 1 <= col <= cols):
        raise StratoNetError(f"well {well} is outside a {params.plate_format}-well plate")
    if int(site) < 1:
        raise StratoNetError(f"site {site}: sites are numbered from 1")
    image, truth = _render(params, row, col, int(site), compound, dose)
    return (image, truth) if masks else image


# --- pieces -----------------------------------------------------------------------------------------------------

def _noise_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """White noise low-passed with a Gaussian of ``sigma`` px, scaled to unit standard deviation."""
    white = rng.standard_normal(shape, dtype=np.float32)
    out = ndi.gaussian_filter(white, sigma, mode="wrap", truncate=3.0)
    return out * np.float32(2.0 * sigma * math.sqrt(math.pi))  # std of filtered unit white noise is 1/(2 sigma sqrt(pi))


def _smooth_field(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """A unit-variance noise field that varies on a scale of ``sigma`` px, computed at low resolution."""
    step = max(1, int(sigma // 2))
    small = max(4, -(-size // step))
    low = _noise_field(rng, (small, small), sigma / step)
    up = _linear_upsampler(small, size)
    return up @ low @ up.T


@lru_cache(maxsize=8)
def _linear_upsampler(small: int, size: int) -> np.ndarray:
    """Matrix ``(size, small)`` of linear interpolation weights (pixel-centre aligned)."""
    pos = np.clip((np.arange(size) + 0.5) * small / size - 0.5, 0, small - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, small - 1)
    frac = (pos - lo).astype(np.float32)
    mat = np.zeros((size, small), np.float32)
    mat[np.arange(size), lo] += 1 - frac
    mat[np.arange(size), hi] += frac
    return mat


@lru_cache(maxsize=4)
def illumination(params: SynthParams) -> np.ndarray:
    """The plate's illumination (vignette) per channel, ``(5, H, W)`` float32; identical for every site."""
    rng = np.random.default_rng(np.random.SeedSequence([int(params.seed), plate_key(params.plate), 0x111]))
    n = params.size
    y, x = np.mgrid[-1:1:complex(0, n), -1:1:complex(0, n)].astype(np.float32)
    out = np.empty((len(CHANNELS), n, n), np.float32)
    for i in range(len(CHANNELS)):
        x0, y0 = rng.uniform(-0.15, 0.15, 2)
        k = rng.uniform(*params.vignette)
        out[i] = 1.0 - k * ((x - x0) ** 2 + (y - y0) ** 2) / 2.0
    return out


def plate_effect(params: SynthParams, row: int, col: int) -> float:
    """Intensity factor of a well: dimmer edge wells, a column and a row gradient, a small per-well jitter."""
    rows, cols = PLATE_FORMATS[params.plate_format]
    edge = row in (1, rows) or col in (1, cols)
    f = params.edge_factor if edge else 1.0
    f *= 1.0 + params.column_gradient * ((col - 1) / (cols - 1) - 0.5)
    f *= 1.0 - params.row_gradient * ((row - 1) / (rows - 1) - 0.5)
    rng = np.random.default_rng(np.random.SeedSequence([int(params.seed), plate_key(params.plate), row, col, 0xE1]))
    return float(f * math.exp(rng.normal(0.0, params.well_jitter)))


def _place_nuclei(rng, size, radii, min_sep_factor=0.9, tries_per_cell=8):
    """Greedy non-overlapping placement, partly clustered like colonies; returns (y, x, index of placed cells)."""
    n = radii.size
    m = n * tries_per_cell
    clusters = rng.uniform(0, size, (4, 2))
    pick = rng.integers(0, 4, m)
    clustered = clusters[pick] + rng.normal(0, 0.18 * size, (m, 2))
    uniform = rng.uniform(0, size, (m, 2))
    cand = np.where((rng.random(m) < 0.4)[:, None], clustered, uniform)
    cand = cand[(cand[:, 0] >= 0) & (cand[:, 0] < size) & (cand[:, 1] >= 0) & (cand[:, 1] < size)]
    ys = np.empty(n)
    xs = np.empty(n)
    rs = np.empty(n)
    placed = 0
    for cy, cx in cand:
        if placed == n:
            break
        r = radii[placed]
        if placed:
            d2 = (ys[:placed] - cy) ** 2 + (xs[:placed] - cx) ** 2
            if np.any(d2 < (min_sep_factor * (rs[:placed] + r)) ** 2):
                continue
        ys[placed], xs[placed], rs[placed] = cy, cx, r
        placed += 1
    return ys[:placed], xs[:placed]


def _splat(img: np.ndarray, ys: np.ndarray, xs: np.ndarray, weights: np.ndarray) -> None:
    """Add point weights at sub-pixel positions (bilinear)."""
    h, w = img.shape
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    fy = ys - y0
    fx = xs - x0
    for dy, dx, wt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy = y0 + dy
        xx = x0 + dx
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        np.add.at(img, (yy[ok], xx[ok]), (weights * wt)[ok])


@dataclass
class _Cells:
    """The cells of one site after the survival draw: position, nucleus shape and per-cell draws."""

    cy: np.ndarray
    cx: np.ndarray
    theta: np.ndarray
    r_eq: np.ndarray
    aspect: np.ndarray
    semi_a: np.ndarray
    semi_b: np.ndarray
    pyk: np.ndarray
    lvl: dict
    extent_f: np.ndarray
    has_fibre: np.ndarray
    fibre_jit: np.ndarray
    fibre_phase: np.ndarray
    fibre_dir: np.ndarray
    frag_jit: np.ndarray
    n_nucleoli: np.ndarray
    golgi_ang: np.ndarray
    harmonics: np.ndarray

    @property
    def n(self) -> int:
        return int(self.cy.size)


def _per_cell(values, dtype=np.float32):
    """Lookup table (index 0 = background) for per-pixel per-cell values."""
    return np.concatenate([[0.0], values]).astype(dtype)


def _render(params: SynthParams, row: int, col: int, site: int, compound: Compound | None, dose: float):
    """One site's five channels (uint16) and its :class:`SiteTruth`; every step draws from its own stream."""
    size = int(params.size)
    s = params.scale
    eff = effects_for(compound, dose)
    root = np.random.SeedSequence([int(params.seed), plate_key(params.plate), row, col, site, 0x5173])
    g_layout, g_cell, g_tex, g_noise = (np.random.default_rng(c) for c in root.spawn(4))

    c = _draw_cells(params, eff, size, g_layout, g_cell)
    labels, qmap = _paint_nuclei(c, size)
    terr = _territories(c, labels, size, s, g_tex)
    tex = _textures(size, s, g_tex)
    spots = _nucleoli(c, size, s, g_tex)
    golgi = _golgi(c, size, s, terr["cyto"])
    signal, fibre_amp = _channels(c, eff, labels, qmap, terr, tex, spots, golgi, s)
    out = _camera(params, row, col, signal, g_noise)
    truth = SiteTruth(
        nuclei=labels, cells=terr["cells"], nuclear_area=np.bincount(labels.ravel(), minlength=c.n + 1)[1:],
        nucleoli=c.n_nucleoli, pyknotic=c.pyk, fibre_amplitude=fibre_amp,
        mito_fragmentation=np.clip(0.05 + eff.mito_fragmentation * c.frag_jit, 0, 1), effects=eff,
    )
    return out, truth


def _draw_cells(params: SynthParams, eff: Effects, size: int, g_layout, g_cell) -> _Cells:
    """Nuclei sizes, shapes and positions, the per-cell draws (in a fixed order, so each stream is reproducible),
    survival and pyknosis (small, round, bright nuclei; the cell shrinks around them)."""
    s = params.scale
    n_mean = params.cells_per_site * (size / REFERENCE_SIZE) ** 2 / s**2
    n_try = max(1, int(round(n_mean * math.exp(g_layout.normal(0.0, 0.1)))))
    r_eq = params.nucleus_radius_px * s * math.sqrt(eff.nuclear_area_fold) * np.exp(g_layout.normal(0, 0.12, n_try))
    aspect = g_layout.uniform(0.6, 1.0, n_try)
    semi_a = r_eq / np.sqrt(aspect)
    cy, cx = _place_nuclei(g_layout, size, semi_a)
    m = cy.size
    r_eq, aspect = r_eq[:m], aspect[:m]

    u_keep = g_cell.random(m)
    u_pyk = g_cell.random(m)
    draws = {
        "theta": g_cell.uniform(0, math.pi, m),
        "lvl": {ch: params.levels[ch] * np.exp(g_cell.normal(0, 0.18, m)) for ch in CHANNELS},
        "extent_f": g_cell.uniform(1.3, 2.6, m),
        "has_fibre": g_cell.random(m),
        "fibre_jit": g_cell.uniform(0.7, 1.3, m),
        "fibre_phase": g_cell.uniform(0, 1, m),
    }
    draws["fibre_dir"] = draws["theta"] + g_cell.normal(0, 0.2, m)
    draws["frag_jit"] = g_cell.uniform(0.85, 1.0, m)
    draws["n_nucleoli"] = np.maximum(1, g_cell.poisson(2.2 * eff.nucleoli_fold, m))
    draws["golgi_ang"] = g_cell.uniform(0, 2 * math.pi, m)
    draws["harmonics"] = g_cell.uniform(-1, 1, (m, 4))

    keep = u_keep < eff.survival
    sel = np.flatnonzero(keep)
    pyk = ((u_pyk < eff.pyknotic_fraction) & keep)[sel]
    kept = {k: ({ch: v[sel] for ch, v in d.items()} if k == "lvl" else d[sel]) for k, d in draws.items()}
    r_eq = np.where(pyk, r_eq[sel] * 0.55, r_eq[sel])
    aspect = np.where(pyk, np.maximum(aspect[sel], 0.9), aspect[sel])
    kept["extent_f"] = np.where(pyk, kept["extent_f"] * 0.45, kept["extent_f"])
    kept["n_nucleoli"] = np.where(pyk, 0, kept["n_nucleoli"])
    return _Cells(cy=cy[sel], cx=cx[sel], r_eq=r_eq, aspect=aspect, semi_a=r_eq / np.sqrt(aspect),
                  semi_b=r_eq * np.sqrt(aspect), pyk=pyk, **kept)


def _paint_nuclei(c: _Cells, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Nucleus labels and, inside nuclei, the squared normalised radius (1 elsewhere), painted in bounding boxes."""
    labels = np.zeros((size, size), np.int32)
    qmap = np.ones((size, size), np.float32)
    cos_t, sin_t = np.cos(c.theta), np.sin(c.theta)
    for i in range(c.n):
        a, b = c.semi_a[i] * 1.15, c.semi_b[i]
        y0, y1 = max(0, int(c.cy[i] - a - 2)), min(size, int(c.cy[i] + a + 3))
        x0, x1 = max(0, int(c.cx[i] - a - 2)), min(size, int(c.cx[i] + a + 3))
        if y1 <= y0 or x1 <= x0:
            continue
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(c.cy[i])
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(c.cx[i])
        u = (dx * cos_t[i] + dy * sin_t[i]) / c.semi_a[i]
        v = (-dx * sin_t[i] + dy * cos_t[i]) / c.semi_b[i]
        q = u * u + v * v
        phi = np.arctan2(v, u)
        h = c.harmonics[i]
        q = q * (1.0 + 0.07 * h[0] * np.sin(2 * phi + 3 * h[1]) + 0.05 * h[2] * np.sin(3 * phi + 3 * h[3]))
        box = labels[y0:y1, x0:x1]
        inside = (q <= 1.0) & (box == 0)
        box[inside] = i + 1
        qmap[y0:y1, x0:x1][inside] = q[inside]
    return labels, qmap


def _territories(c: _Cells, labels: np.ndarray, size: int, s: float, g_tex) -> dict:
    """Cell territories: the nearest nucleus, bounded by an irregular extent. Returns the per-pixel maps
    ``owner``, ``nuc``, ``u_cell``, ``in_cell``, ``cells``, ``cyto`` and ``u_c``."""
    nuc = labels > 0
    if c.n:
        dist, (iy, ix) = ndi.distance_transform_edt(~nuc, return_indices=True)
        owner = labels[iy, ix]
    else:
        dist = np.full((size, size), np.inf)
        owner = np.zeros((size, size), np.int32)
    irregular = _smooth_field(g_tex, size, 10.0 * s)
    extent = np.concatenate([[1.0], c.r_eq * c.extent_f]).astype(np.float32)[owner]
    u_cell = dist.astype(np.float32) / (extent * (1.0 + 0.25 * irregular).clip(0.4))
    in_cell = (u_cell < 1.0) & (owner > 0)
    cyto = in_cell & ~nuc
    return {"owner": owner, "nuc": nuc, "u_cell": u_cell, "in_cell": in_cell,
            "cells": np.where(in_cell, owner, 0).astype(np.int32), "cyto": cyto,
            "u_c": np.where(cyto, u_cell, 1.0).astype(np.float32)}


def _textures(size: int, s: float, g_tex) -> dict:
    """Full-frame noise textures: ``fine`` grain, the ER network, mitochondrial tubules and puncta."""
    fine = _noise_field(g_tex, (size, size), max(0.8, 1.2 * s))
    er_net = np.exp(-(_noise_field(g_tex, (size, size), max(1.0, 2.0 * s)) / 0.35) ** 2)
    tubules = np.exp(-(_noise_field(g_tex, (size, size), max(0.8, 1.6 * s)) / 0.25) ** 2)
    puncta = np.clip(_noise_field(g_tex, (size, size), max(0.8, 1.3 * s)) - 1.5, 0, None) * 2.5
    return {"fine": fine, "er_net": er_net, "tubules": tubules, "puncta": puncta}


def _nucleoli(c: _Cells, size: int, s: float, g_tex) -> np.ndarray:
    """Nucleoli (RNA spots, dark in DNA) as blurred point sources: spread evenly on an outer ring and, from 4
    spots on, a quarter of them on an inner ring."""
    spot_sigma = max(0.8, 1.3 * s)
    n, n_nucleoli = c.n, c.n_nucleoli
    k = int(n_nucleoli.sum())
    spots = np.zeros((size, size), np.float32)
    if k:
        owner_s = np.repeat(np.arange(n), n_nucleoli)
        idx_in = np.arange(k) - np.repeat(np.cumsum(n_nucleoli) - n_nucleoli, n_nucleoli)
        n_inner = np.where(n_nucleoli >= 4, n_nucleoli // 4, 0)[owner_s]
        inner = idx_in < n_inner
        ring_pos = np.where(inner, idx_in, idx_in - n_inner)
        ring_n = np.where(inner, n_inner, n_nucleoli[owner_s] - n_inner)
        ang = 2 * math.pi * ring_pos / np.maximum(ring_n, 1) + g_tex.uniform(0, 2 * math.pi, n)[owner_s] \
            + np.where(inner, math.pi / 3, 0.0) + g_tex.normal(0, 0.15, k)
        rad = np.where(inner, g_tex.uniform(0.15, 0.25, k), g_tex.uniform(0.5, 0.65, k))
        su, sv = rad * np.cos(ang) * c.semi_a[owner_s], rad * np.sin(ang) * c.semi_b[owner_s]
        cos_t, sin_t = np.cos(c.theta), np.sin(c.theta)
        sy = c.cy[owner_s] + su * sin_t[owner_s] + sv * cos_t[owner_s]
        sx = c.cx[owner_s] + su * cos_t[owner_s] - sv * sin_t[owner_s]
        _splat(spots, sy, sx, np.full(k, 2 * math.pi * spot_sigma**2, np.float32))
        spots = ndi.gaussian_filter(spots, spot_sigma)
        np.clip(spots, 0, 1.5, out=spots)
    return spots


def _golgi(c: _Cells, size: int, s: float, cyto: np.ndarray) -> np.ndarray:
    """The Golgi (AGP) as one blurred point source beside each nucleus, in the cytoplasm."""
    golgi = np.zeros((size, size), np.float32)
    if c.n:
        g_sigma = max(1.5, 3.0 * s)
        gr = c.r_eq + 1.5 * g_sigma
        _splat(golgi, c.cy + gr * np.sin(c.golgi_ang), c.cx + gr * np.cos(c.golgi_ang),
               (2 * math.pi * g_sigma**2 * 0.9 * c.lvl["AGP"] * ~c.pyk).astype(np.float32))
        golgi = ndi.gaussian_filter(golgi, g_sigma) * cyto
    return golgi


def _channels(c: _Cells, eff: Effects, labels, qmap, terr: dict, tex: dict, spots, golgi, s: float):
    """The five channels in ADU above background (before plate effect and illumination), and each cell's fibre
    amplitude."""
    lvl, pyk, q, fine = c.lvl, c.pyk, qmap, tex["fine"]
    owner, nuc, cyto, u_c = terr["owner"], terr["nuc"], terr["cyto"], terr["u_c"]
    dna_lvl = lvl["DNA"] * eff.nuclear_area_fold ** -0.3 * np.where(pyk, 2.2, 1.0)
    dna = _per_cell(dna_lvl)[labels] * (1.0 - 0.3 * q) * (1.0 + 0.2 * fine) * (1.0 - 0.5 * np.minimum(spots, 1.0))

    rna_o = _per_cell(lvl["RNA"])[owner]
    rna = rna_o * (cyto * (0.3 + 0.7 * np.exp(-2.0 * u_c)) + nuc * 0.35) * (1.0 + 0.25 * fine)
    rna += spots * _per_cell(3.5 * lvl["RNA"])[labels]

    er_o = _per_cell(lvl["ER"] * eff.er_fold)[owner]
    er = er_o * (cyto * (0.2 + np.exp(-2.5 * u_c)) * (0.3 + tex["er_net"])
                 + nuc * 0.9 * np.exp(-(((1.0 - q) / 0.25) ** 2)))

    frag = _per_cell(np.clip(0.05 + eff.mito_fragmentation * c.frag_jit, 0, 1))[owner]
    mito_lvl = lvl["Mito"] * (1.0 + 0.5 * eff.mito_fragmentation)
    density = 0.15 + np.exp(-(1.5 + 5.0 * frag) * u_c)
    mito = _per_cell(mito_lvl)[owner] * cyto * density * ((1.0 - frag) * (0.15 + tex["tubules"])
                                                          + frag * (0.1 + tex["puncta"]))

    fibre_amp = np.where(c.has_fibre < eff.fibre_fraction, eff.fibre_amplitude * c.fibre_jit, 0.0) * ~pyk
    agp = _agp(c, owner, terr["in_cell"], terr["u_cell"], fibre_amp, fine, s)
    agp += golgi
    return {"Mito": mito, "AGP": agp, "RNA": rna, "ER": er, "DNA": dna}, fibre_amp


def _agp(c: _Cells, owner, in_cell, u_cell, fibre_amp, fine, s: float) -> np.ndarray:
    """Actin, Golgi and plasma membrane (AGP, without the Golgi): a bright cell rim and thin parallel fibres."""
    size = owner.shape[0]
    lam = max(4.0, 8.0 * s)
    yy = np.arange(size, dtype=np.float32)[:, None]
    xx = np.arange(size, dtype=np.float32)[None, :]
    fd = _per_cell(c.fibre_dir)[owner]
    proj = (xx - _per_cell(c.cx)[owner]) * -np.sin(fd) + (yy - _per_cell(c.cy)[owner]) * np.cos(fd)
    stripes = 0.5 + 0.5 * np.cos(np.float32(2 * math.pi) * (proj / np.float32(lam) + _per_cell(c.fibre_phase)[owner]))
    stripes *= stripes
    stripes = stripes * stripes * stripes  # cos^6 profile: thin parallel fibres
    u_all = np.where(in_cell, u_cell, 1.0)
    agp_o = _per_cell(c.lvl["AGP"])[owner]
    return agp_o * in_cell * (0.2 + 0.9 * np.exp(-(((1.0 - u_all) / 0.1) ** 2))
                              + _per_cell(fibre_amp)[owner] * stripes * (1.0 - u_all**4) * (0.7 + 0.3 * fine))


def _camera(params: SynthParams, row: int, col: int, signal: dict, g_noise) -> np.ndarray:
    """Plate effect, illumination, background and camera noise: the five channels as uint16 ADU."""
    size = int(params.size)
    well_f = plate_effect(params, row, col)
    illum = illumination(params)
    out = np.empty((len(CHANNELS), size, size), np.uint16)
    for i, ch in enumerate(CHANNELS):
        electrons = (np.maximum(signal[ch], 0) * np.float32(well_f) + np.float32(params.background[ch])) * illum[i]
        electrons /= np.float32(params.gain)
        # shot noise (Poisson, drawn as its Gaussian limit: every pixel expects > 100 e-) plus read noise
        sd = np.sqrt(electrons + np.float32(params.read_noise_e**2))
        electrons += sd * g_noise.standard_normal(electrons.shape, dtype=np.float32)
        adu = np.float32(params.offset_adu) + np.float32(params.gain) * electrons
        out[i] = np.clip(np.rint(adu), 0, 65535).astype(np.uint16)
    return out
