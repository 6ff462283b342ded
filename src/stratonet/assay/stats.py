"""Assay-quality statistics between positive and negative controls: Z'-factor, robust Z', SSMD, S/B, CV.

All functions take two 1-D arrays of a readout (one value per well) and return plain floats; NaN when a statistic
is undefined (e.g. a zero denominator). Conventions follow Zhang et al. 1999 (Z'), Zhang 2007 (SSMD) and the usual
robust variants (median and MAD scaled by 1.4826 to estimate a normal SD).
"""

from __future__ import annotations

import numpy as np

#: MAD -> SD of a normal distribution.
MAD_TO_SD = 1.4826


def _clean(values) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def mad_sd(values) -> float:
    """Robust SD: 1.4826 x the median absolute deviation from the median."""
    a = _clean(values)
    return float(MAD_TO_SD * np.median(np.abs(a - np.median(a)))) if a.size else float("nan")


def z_prime(pos, neg) -> float:
    """Z'-factor: ``1 - 3 (sd_pos + sd_neg) / |mean_pos - mean_neg|`` (sample SDs, ddof=1)."""
    p, n = _clean(pos), _clean(neg)
    if p.size < 2 or n.size < 2:
        return float("nan")
    gap = abs(p.mean() - n.mean())
    if gap == 0:
        return float("nan")
    return float(1.0 - 3.0 * (p.std(ddof=1) + n.std(ddof=1)) / gap)


def robust_z_prime(pos, neg) -> float:
    """Robust Z': Z' with medians for means and MAD-based SDs (1.4826 x MAD)."""
    p, n = _clean(pos), _clean(neg)
    if p.size < 2 or n.size < 2:
        return float("nan")
    gap = abs(np.median(p) - np.median(n))
    if gap == 0:
        return float("nan")
    return float(1.0 - 3.0 * (mad_sd(p) + mad_sd(n)) / gap)


def ssmd(pos, neg) -> float:
    """Strictly standardised mean difference: ``(mean_pos - mean_neg) / sqrt(var_pos + var_neg)`` (ddof=1)."""
    p, n = _clean(pos), _clean(neg)
    if p.size < 2 or n.size < 2:
        return float("nan")
    denom = np.sqrt(p.var(ddof=1) + n.var(ddof=1))
    return float((p.mean() - n.mean()) / denom) if denom > 0 else float("nan")


def signal_to_background(pos, neg) -> float:
    """``mean_pos / mean_neg``; NaN when the negative mean is within one SD of 0 or the means differ in sign.

    Only meaningful for a readout on a ratio scale (an intensity, a count); for centred or signed readouts
    (z-scores, projections) it is reported as NaN rather than as a misleading number.
    """
    p, n = _clean(pos), _clean(neg)
    if not p.size or not n.size:
        return float("nan")
    mp, mn = p.mean(), n.mean()
    sd_n = n.std(ddof=1) if n.size > 1 else 0.0
    if mn == 0 or np.sign(mp) != np.sign(mn) or abs(mn) <= sd_n:  # background not clearly away from 0: centred
        return float("nan")
    return float(mp / mn)


def cv(values) -> float:
    """Coefficient of variation ``sd / |mean|`` (ddof=1); NaN for a zero mean."""
    a = _clean(values)
    if a.size < 2 or a.mean() == 0:
        return float("nan")
    return float(a.std(ddof=1) / abs(a.mean()))


def control_statistics(pos, neg) -> dict:
    """Every statistic of this module plus the counts, means, medians and SDs of both controls."""
    p, n = _clean(pos), _clean(neg)
    return {
        "n_pos": int(p.size), "n_neg": int(n.size),
        "z_prime": z_prime(p, n), "robust_z_prime": robust_z_prime(p, n), "ssmd": ssmd(p, n),
        "signal_to_background": signal_to_background(p, n), "cv_pos": cv(p), "cv_neg": cv(n),
        "mean_pos": float(p.mean()) if p.size else float("nan"),
        "mean_neg": float(n.mean()) if n.size else float("nan"),
        "sd_pos": float(p.std(ddof=1)) if p.size > 1 else float("nan"),
        "sd_neg": float(n.std(ddof=1)) if n.size > 1 else float("nan"),
        "median_pos": float(np.median(p)) if p.size else float("nan"),
        "median_neg": float(np.median(n)) if n.size else float("nan"),
    }


def z_prime_per_column(X: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Vectorised Z' of every column of ``X`` between the rows selected by the boolean masks ``pos``/``neg``."""
    xp, xn = X[pos], X[neg]
    gap = np.abs(xp.mean(axis=0) - xn.mean(axis=0))
    spread = xp.std(axis=0, ddof=1) + xn.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = 1.0 - 3.0 * spread / gap
    z[~np.isfinite(z)] = np.nan
    return z
