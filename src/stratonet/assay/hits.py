"""Hit calling against the negative-control null: per-well activity, empirical or Gaussian p-values, BH at an FDR.

A well's activity is its distance from the negcon wells on the readout: the readout itself for a distance readout
(Mahalanobis, cosine), else ``|score - median(negcon scores)|``. The null is the activity of the negcon wells, each
scored out of sample (see :mod:`stratonet.assay.readouts`), so the null and the tested wells are on the same
footing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stratonet.core.errors import ConfigError

P_METHODS = ("empirical", "gaussian")


def activity(scores: np.ndarray, neg: np.ndarray, is_distance: bool) -> np.ndarray:
    """Per-well activity: the distance itself, or the absolute deviation from the negcon median."""
    s = np.asarray(scores, dtype=np.float64)
    return s.copy() if is_distance else np.abs(s - np.nanmedian(s[neg]))


def empirical_p(values: np.ndarray, null: np.ndarray) -> np.ndarray:
    """One-sided empirical p-value ``(1 + #{null >= v}) / (1 + n_null)`` (never 0; floor ``1 / (1 + n_null)``)."""
    null = np.sort(np.asarray(null, dtype=np.float64)[np.isfinite(null)])
    v = np.asarray(values, dtype=np.float64)
    n_ge = len(null) - np.searchsorted(null, v, side="left")
    return (1.0 + n_ge) / (1.0 + len(null))


def gaussian_p(values: np.ndarray, null: np.ndarray) -> np.ndarray:
    """One-sided p-value of ``values`` under a normal fitted to the null (mean, SD with ddof=1)."""
    from scipy import stats

    null = np.asarray(null, dtype=np.float64)
    null = null[np.isfinite(null)]
    sd = null.std(ddof=1)
    if not sd > 0:
        return np.where(np.asarray(values) > null.mean(), 0.0, 1.0)
    return stats.norm.sf((np.asarray(values, dtype=np.float64) - null.mean()) / sd)


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``); NaN stays NaN."""
    from scipy.stats import false_discovery_control

    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = false_discovery_control(p[ok], method="bh")
    return out


def call_hits(scores: np.ndarray, neg: np.ndarray, is_distance: bool, fdr: float = 0.05,
              p_method: str = "empirical") -> tuple[pd.DataFrame, dict]:
    """Activity, p-value, BH q-value and hit flag for every well of one plate.

    Parameters
    ----------
    scores : ndarray
        Out-of-sample readout per well.
    neg : ndarray of bool
        Negative-control wells: the null. They get an activity and a p-value (against the other negcon wells'
        activities) but are not part of the BH family and are never hits.
    fdr : float
        BH false-discovery rate.
    p_method : {"empirical", "gaussian"}

    Returns
    -------
    table : DataFrame
        ``activity``, ``p_value``, ``q_value``, ``hit`` (rows in input order).
    info : dict
        ``n_null``, ``n_tested``, ``n_hits``, ``p_floor`` and a ``warning`` when no well can reach the FDR.
    """
    if p_method not in P_METHODS:
        raise ConfigError(f"unknown p-value method '{p_method}' (use {', '.join(P_METHODS)})")
    if not 0 < fdr < 1:
        raise ConfigError(f"--fdr must be in (0, 1), got {fdr}")
    act = activity(scores, neg, is_distance)
    null = act[neg]
    tested = ~neg & np.isfinite(act)
    p = np.full(len(act), np.nan)
    fn = empirical_p if p_method == "empirical" else gaussian_p
    p[tested] = fn(act[tested], null)
    for i in np.flatnonzero(neg):  # a negcon well against the other negcon wells
        others = null[np.flatnonzero(neg) != i]
        p[i] = fn(act[i : i + 1], others)[0]
    q = np.full(len(act), np.nan)
    q[tested] = bh_adjust(p[tested])
    hit = tested & (q <= fdr)
    info = {"n_null": int(neg.sum()), "n_tested": int(tested.sum()), "n_hits": int(hit.sum()), "fdr": fdr,
            "p_method": p_method}
    if p_method == "empirical":
        info["p_floor"] = 1.0 / (1.0 + neg.sum())
        if info["p_floor"] > fdr:
            info["warning"] = (f"empirical p-values cannot go below 1/(1 + {int(neg.sum())} negcon wells) = "
                               f"{info['p_floor']:.3f} > FDR {fdr}: no well can be a hit; use more negcon wells, "
                               "a higher --fdr or --p-value gaussian")
    negative_fp = int((neg & (p <= fdr)).sum())
    info["negcon_below_fdr"] = negative_fp
    return pd.DataFrame({"activity": act, "p_value": p, "q_value": q, "hit": hit}), info
