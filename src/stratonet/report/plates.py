"""Plate maps: per-site and per-well tables of a run, and 96/384/1536-well heatmaps drawn as SVG.

The SVG is written by hand (a few hundred ``<rect>``): crisp at any zoom, small, and each well carries
``data-plate`` / ``data-well`` so the plate viewer's click handler can find it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stratonet.report import html as H

#: Plate formats as (rows, columns).
FORMATS = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}
SITE_KEYS = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
_WELL = re.compile(r"^([A-Z]{1,2})(\d{1,2})$")


def row_col(well: str) -> tuple[int, int] | None:
    """``B03`` -> (1, 2), zero-based; None for a name that is not a well."""
    m = _WELL.match(str(well).strip().upper())
    if not m:
        return None
    letters, col = m.group(1), int(m.group(2))
    row = ord(letters[-1]) - 65 + (26 * (ord(letters[0]) - 64) if len(letters) == 2 else 0)
    return row, col - 1


def row_name(r: int) -> str:
    """Zero-based row -> ``A`` .. ``Z``, ``AA`` .."""
    return chr(65 + r) if r < 26 else chr(64 + r // 26) + chr(65 + r % 26)


def plate_format(wells) -> int:
    """The smallest standard format holding every well (96, 384 or 1536)."""
    pos = [row_col(w) for w in wells]
    pos = [p for p in pos if p]
    rmax = max((p[0] for p in pos), default=0)
    cmax = max((p[1] for p in pos), default=0)
    for n, (r, c) in FORMATS.items():
        if rmax < r and cmax < c:
            return n
    return 1536


def _colour(cmap, t: float) -> str:
    r, g, b, _ = cmap(float(np.clip(t, 0, 1)))
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


@dataclass(frozen=True)
class PlateStyle:
    """How a plate map is drawn.

    Parameters
    ----------
    kind : {"continuous", "categorical"}
        Numbers on a colour scale, or category names with their colours.
    vmin, vmax : float, optional
        Ends of the colour scale (default: the values' range).
    cmap_name : str
        A matplotlib colour map for continuous maps.
    categories : dict, optional
        Category -> colour for categorical maps.
    map_id : str
        The figure's HTML id.
    """

    kind: str = "continuous"
    vmin: float | None = None
    vmax: float | None = None
    cmap_name: str = "viridis"
    categories: dict[str, str] | None = None
    map_id: str = ""


def plate_svg(plate: str, fmt: int, values: dict[str, float | str], title: str, style: PlateStyle = PlateStyle(),
              *, labels: dict[str, str] | None = None, marks: dict[str, str] | None = None,
              empty: set[str] = frozenset(), failed: set[str] = frozenset()) -> str:
    """One plate map as inline SVG with its legend.

    Parameters
    ----------
    values : dict
        Well -> number (``style.kind="continuous"``) or category name (``"categorical"``); NaN / absent wells
        that are not empty are drawn white with a grey rim ("no value").
    style : PlateStyle
        Kind, colour scale and colours, figure id.
    labels : dict, optional
        Well -> hover text (shown as the SVG ``<title>``).
    marks : dict, optional
        Well -> a short glyph drawn in the well (e.g. ``"*"`` for significant activity).
    empty, failed : set of str
        Wells with no sites in the index (light grey, no outline) and wells whose every site failed (a red cross).
    """
    kind, vmin, vmax, cmap_name = style.kind, style.vmin, style.vmax, style.cmap_name
    categories, map_id = style.categories, style.map_id
    import matplotlib

    rows, cols = FORMATS[fmt]
    cell = {96: 26, 384: 15, 1536: 8}[fmt]
    left, top = 22, 16
    width, height = left + cols * cell + 4, top + rows * cell + 4
    cmap = matplotlib.colormaps[cmap_name]
    nums = [float(v) for v in values.values() if kind == "continuous" and v is not None and np.isfinite(float(v))]
    lo = vmin if vmin is not None else (min(nums) if nums else 0.0)
    hi = vmax if vmax is not None else (max(nums) if nums else 1.0)
    span = (hi - lo) or 1.0
    parts = [f'<svg class="plate" role="img" aria-label="{H.esc(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-size="{8 if cell < 20 else 10}"'
             f' font-family="sans-serif">']
    step = 1 if cell >= 15 else 4
    for c in range(0, cols, step if fmt != 384 else 2):
        parts.append(f'<text x="{left + c * cell + cell / 2}" y="11" text-anchor="middle" fill="#555">{c + 1}</text>')
    for r in range(0, rows, 1 if fmt <= 384 else 4):
        parts.append(f'<text x="2" y="{top + r * cell + cell * 0.72}" fill="#555">{row_name(r)}</text>')
    for r in range(rows):
        for c in range(cols):
            well = f"{row_name(r)}{c + 1:02d}"
            x, y = left + c * cell, top + r * cell
            v = values.get(well)
            if well in empty:
                fill, stroke, tip = "#f1f1f1", "#f1f1f1", f"{well}: empty (no sites in the index)"
            else:
                if kind == "categorical":
                    fill = (categories or {}).get(str(v), "#ffffff") if v is not None else "#ffffff"
                elif v is None or not np.isfinite(float(v)):
                    fill = "#ffffff"
                else:
                    fill = _colour(cmap, (float(v) - lo) / span)
                stroke = "#9aa4ad"
                tip = (labels or {}).get(well) or f"{well}: {H.fmt(v) if v is not None else 'no value'}"
            parts.append(f'<rect class="w" data-plate="{H.esc(plate)}" data-well="{well}" x="{x + 0.5}" y="{y + 0.5}"'
                         f' width="{cell - 1}" height="{cell - 1}" fill="{fill}" stroke="{stroke}">'
                         f"<title>{H.esc(tip)}</title></rect>")
            if well in failed:
                parts.append(f'<path d="M{x + 2} {y + 2}L{x + cell - 2} {y + cell - 2}M{x + cell - 2} {y + 2}'
                             f'L{x + 2} {y + cell - 2}" stroke="#d00" stroke-width="1.5" pointer-events="none"/>')
            mark = (marks or {}).get(well)
            if mark:
                parts.append(f'<circle cx="{x + cell / 2}" cy="{y + cell / 2}" r="{max(2, cell / 6)}" fill="#fff" '
                             f'stroke="#000" stroke-width="1" pointer-events="none"/>')
    parts.append("</svg>")
    legend = _legend(kind, lo, hi, cmap, categories)
    return (f'<figure class="platemap" id="{H.esc(map_id)}"><figcaption><b>{H.esc(title)}</b></figcaption>'
            + "".join(parts) + legend + "</figure>")


def _legend(kind: str, lo: float, hi: float, cmap, categories: dict[str, str] | None) -> str:
    if kind == "categorical":
        items = "".join(f'<span><i style="background:{c}"></i>{H.esc(k)}</span>'
                        for k, c in (categories or {}).items())
        return f'<div class="legend">{items}</div>'
    if float(hi) == float(lo):  # one value everywhere: say so rather than draw a bar from x to x
        return (f'<div class="legend"><span><i style="background:{_colour(cmap, 0.0)}"></i>every well with a value: '
                f"{H.esc(H.fmt(float(lo)))}</span></div>")
    stops = ",".join(_colour(cmap, t) for t in np.linspace(0, 1, 6))
    return (f'<div class="legend"><span>{H.fmt(float(lo))}</span><i class="bar" style="background:'
            f'linear-gradient(90deg,{stops})"></i><span>{H.fmt(float(hi))}</span></div>')


def category_colours(names) -> dict[str, str]:
    """Stable colours for up to 20 categories (tab20), in the order given (a list) or sorted (a set); beyond that,
    one grey for the rest."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    out = {}
    order = list(dict.fromkeys(map(str, names))) if isinstance(names, (list, tuple)) else sorted({str(x) for x in names})
    for i, n in enumerate(order):
        out[n] = _colour(cmap, (i % 20) / 19) if i < 20 else "#bbbbbb"
    return out


CONTROL_COLOURS = {"negcon": "#8fb3d9", "poscon": "#e4572e", "trt": "#f2c14e", "unknown": "#cccccc"}


# --- per-well numbers ---------------------------------------------------------------------------------------

def distance_to_negcon(profiles: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Distance of each well profile to its plate's negative-control median, with an empirical p-value.

    Each feature is first expressed as a robust z-score against the plate's controls (median and 1.4826 x MAD of
    the negcon wells; features whose control MAD is 0 are left out) and clipped to +-:data:`Z_CLIP`, so a
    near-constant feature cannot dominate; the distance is the root-mean-square of those z-scores' differences
    from the control median (0 for a typical control). Cosine distance would be undefined, since profiles
    normalised against the controls put the control median at the origin.

    The null is each negative-control well's distance to the median of the *other* controls (leave one out), so a
    control never scores itself. ``p = (1 + #null >= d) / (1 + n_null)``; BH-corrected over treated wells.

    Returns
    -------
    DataFrame
        ``Metadata_Plate, Metadata_Well, distance, p, q, n_negcon``.
    """
    from stratonet.profile.controls import negcon_mask

    rows = []
    for plate, grp in profiles.groupby("Metadata_Plate", sort=False):
        X = grp[features].to_numpy(np.float64)
        neg = negcon_mask(grp, required=False)
        if neg.sum() < 2:
            for w in grp["Metadata_Well"]:
                rows.append({"Metadata_Plate": plate, "Metadata_Well": w, "distance": np.nan, "p": np.nan,
                             "q": np.nan, "n_negcon": int(neg.sum())})
            continue
        centre = np.median(X[neg], axis=0)
        mad = 1.4826 * np.median(np.abs(X[neg] - centre), axis=0)
        keep = mad > 0
        X = np.clip((X[:, keep] - centre[keep]) / mad[keep], -Z_CLIP, Z_CLIP)
        centre = np.zeros(X.shape[1])
        dist = np.array([_rmsdist(x, centre) for x in X])
        idx = np.flatnonzero(neg)
        null = np.array([_rmsdist(X[i], np.median(X[idx[idx != i]], axis=0)) for i in idx])
        p = np.array([(1 + np.sum(null >= d)) / (1 + len(null)) for d in dist])
        q = np.full(len(p), np.nan)
        trt = ~neg
        if trt.any():
            q[trt] = _bh(p[trt])
        for w, d, pp, qq in zip(grp["Metadata_Well"], dist, p, q):
            rows.append({"Metadata_Plate": plate, "Metadata_Well": w, "distance": d, "p": pp, "q": qq,
                         "n_negcon": int(neg.sum())})
    return pd.DataFrame(rows)


#: Robust z-scores are clipped to this magnitude before the distance to the controls.
Z_CLIP = 20.0


def _rmsdist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2))) if len(a) else float("nan")


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values."""
    n = len(p)
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adj, 1.0)
    return out


def find_index_tables(run: Path) -> list[Path]:
    """Index tables of a run: ``index.parquet`` / ``index*.parquet`` at its root and ``index/*.parquet``."""
    found = sorted(run.glob("index*.parquet")) + (sorted((run / "index").glob("*.parquet"))
                                                  if (run / "index").is_dir() else [])
    return [p for p in found if p.is_file()]


def find_feature_tables(run: Path) -> dict[str, Path]:
    """Feature tables of a run, by name: ``features/<name>.parquet`` (deep, pixel) and the site table of each
    ``extract classical`` output folder, ``features/<name>/site.parquet`` (the CLI and the demo write the same).
    """
    feats = run / "features"
    if not feats.is_dir():
        return {}
    out = {p.stem: p for p in sorted(feats.glob("*.parquet")) if p.is_file()}
    for d in sorted(p for p in feats.iterdir() if p.is_dir() and (p / "site.parquet").is_file()):
        out.setdefault(d.name, d / "site.parquet")
    return out


def find_masks(run: Path) -> dict[tuple[str, str, str], dict[str, Path]]:
    """Label images saved by ``extract classical --save-masks``: (plate, well, site) -> {Nuclei|Cells: path}."""
    out: dict[tuple[str, str, str], dict[str, Path]] = {}
    pat = re.compile(r"^(.+)_([A-Z]{1,2}\d{2})_([^_]+)_(Nuclei|Cells)\.tiff?$")
    for p in run.rglob("masks/*.tif*"):
        m = pat.match(p.name)
        if m:
            out.setdefault((m.group(1), m.group(2), m.group(3)), {})[m.group(4)] = p
    return out


def fmt_p(p: float) -> str:
    """A p / q value for a hover label."""
    return "–" if p is None or not math.isfinite(p) else (f"{p:.2g}" if p < 0.01 else f"{p:.2f}")
