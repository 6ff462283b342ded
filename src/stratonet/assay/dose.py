"""Four-parameter logistic (4PL) dose-response fits with bootstrap confidence intervals.

The model on a log-dose axis ``x`` (log10 concentration, or a dose index whose steps are already log-spaced)::

    f(x) = bottom + (top - bottom) / (1 + 10 ** ((x50 - x) * hill))

``hill > 0``; a falling curve has ``top < bottom``. EC50 is ``10 ** x50`` for concentrations and ``x50`` itself for a
dose index. Fits are batched: one vectorised Levenberg-Marquardt solves many curves (the bootstrap resamples, the
starting points) at once.

A fit is reported as a number only when it is one: ``status`` is ``ok``, or ``flat`` (the 4PL does not beat a
constant, F-test), ``ec50_outside_range`` (the midpoint lies outside the tested doses, so EC50 is an
extrapolation), or ``failed`` (too few doses, no convergence); parameters are NaN for every status but ``ok``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

LN10 = np.log(10.0)
HILL_BOUNDS = (1e-3, 20.0)
MIN_DOSES = 4


def logistic4(x, bottom, top, x50, hill):
    """The 4PL curve (broadcasts over parameters and ``x``)."""
    return bottom + (top - bottom) / (1.0 + np.power(10.0, np.clip((x50 - x) * hill, -50, 50)))


def _jacobian(x: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values (B, n) and Jacobian (B, n, 4) of the 4PL at parameters ``P`` (B, 4)."""
    b, t, m, h = (P[:, i : i + 1] for i in range(4))
    s = 1.0 / (1.0 + np.power(10.0, np.clip((m - x) * h, -50, 50)))
    f = b + (t - b) * s
    g = -(t - b) * LN10 * s * (1.0 - s)
    J = np.stack([1.0 - s, s, g * h, g * (m - x)], axis=-1)
    return f, J


def fit_batch(x: np.ndarray, Y: np.ndarray, P0: np.ndarray, x50_bounds: tuple[float, float],
              iterations: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares 4PL fits of many curves on the same ``x`` by a vectorised Levenberg-Marquardt.

    Parameters
    ----------
    x : ndarray, shape (n,)
    Y : ndarray, shape (B, n)
    P0 : ndarray, shape (B, 4)
        Starting (bottom, top, x50, hill).
    x50_bounds : (float, float)
        ``x50`` is kept inside these bounds; ``hill`` inside :data:`HILL_BOUNDS`.

    Returns
    -------
    P : ndarray, shape (B, 4)
    sse : ndarray, shape (B,)
    """
    P = P0.astype(np.float64).copy()
    lam = np.full(len(P), 1e-2)
    f, J = _jacobian(x, P)
    sse = ((Y - f) ** 2).sum(axis=1)
    lo = np.array([-np.inf, -np.inf, x50_bounds[0], HILL_BOUNDS[0]])
    hi = np.array([np.inf, np.inf, x50_bounds[1], HILL_BOUNDS[1]])
    eye = np.eye(4)
    for _ in range(iterations):
        r = Y - f
        JtJ = np.einsum("bni,bnj->bij", J, J)
        Jtr = np.einsum("bni,bn->bi", J, r)
        A = JtJ + lam[:, None, None] * (eye * np.maximum(np.diagonal(JtJ, axis1=1, axis2=2), 1e-12)[:, None, :])
        try:
            step = np.linalg.solve(A, Jtr[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(A[0], Jtr[0], rcond=None)[0][None] if len(P) == 1 else np.zeros_like(P)
        cand = np.clip(P + step, lo, hi)
        fc, Jc = _jacobian(x, cand)
        sse_c = ((Y - fc) ** 2).sum(axis=1)
        better = np.isfinite(sse_c) & (sse_c < sse * (1 - 1e-10))
        P[better], f[better], J[better] = cand[better], fc[better], Jc[better]
        sse[better] = sse_c[better]
        lam = np.where(better, lam / 3.0, lam * 4.0)
        if not better.any() and np.all(lam > 1e6):  # every curve stuck: converged
            break
    return P, sse


def _starts(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A few starting points: bottom/top from the lowest/highest dose, several midpoints and slopes."""
    xs = np.unique(x)
    lo, hi = y[x == xs[0]].mean(), y[x == xs[-1]].mean()
    span = xs[-1] - xs[0]
    mids = xs[0] + span * np.array([0.25, 0.5, 0.75])
    hills = np.array([1.0, 4.0]) / max(span / 4.0, 1e-6) * 0.25
    return np.array([[lo, hi, m, h] for m in mids for h in hills])


@dataclass
class DoseFit:
    """One 4PL fit: status, parameters (NaN unless ``ok``), their bootstrap CIs and goodness of fit."""

    status: str
    note: str
    n_wells: int
    n_doses: int
    bottom: float = np.nan
    top: float = np.nan
    x50: float = np.nan
    hill: float = np.nan
    ec50: float = np.nan
    bottom_lo: float = np.nan
    bottom_hi: float = np.nan
    top_lo: float = np.nan
    top_hi: float = np.nan
    ec50_lo: float = np.nan
    ec50_hi: float = np.nan
    hill_lo: float = np.nan
    hill_hi: float = np.nan
    r2: float = np.nan
    f_p_value: float = np.nan
    n_boot: int = 0
    raw_params: tuple = (np.nan, np.nan, np.nan, np.nan)

    def as_row(self) -> dict:
        row = asdict(self)
        row.pop("raw_params")
        return row


def fit_4pl(x, y, log_dose: bool = False, n_boot: int = 200, ci: float = 0.95, flat_alpha: float = 0.05,
            seed: int = 0, ci_method: str = "t") -> DoseFit:
    """Fit a 4PL to one compound's wells, with residual-bootstrap percentile CIs.

    Parameters
    ----------
    x : array
        Doses. With ``log_dose`` concentrations (> 0; fitted on log10), else positions on a log-like axis (a dose
        index), used as they are.
    y : array
        Readout per well.
    log_dose : bool
        Fit on log10(x) and report EC50 = 10 ** x50 (in the units of ``x``).
    n_boot : int
        Bootstrap resamples (residuals resampled with replacement, rescaled by sqrt(n / (n - 4))).
    ci : float
        Confidence level.
    flat_alpha : float
        A curve whose F-test against a constant has p >= ``flat_alpha`` is ``flat``.
    ci_method : {"t", "percentile"}
        ``t``: estimate +- t(n - 4) quantile x bootstrap SD (on log-dose for EC50); ``percentile``: bootstrap
        percentiles (covers less than nominal with a few dozen wells).

    Returns
    -------
    DoseFit
    """
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if log_dose:
        ok &= x > 0
    x, y = x[ok], y[ok]
    if log_dose:
        x = np.log10(x)
    n, n_doses = len(x), len(np.unique(x))
    if n_doses < MIN_DOSES or n < MIN_DOSES + 1:
        return DoseFit("failed", f"too few doses for a 4PL ({n_doses} distinct doses, {n} wells; need "
                                 f">= {MIN_DOSES} doses and {MIN_DOSES + 1} wells)", n, n_doses)
    xs = np.unique(x)
    span = xs[-1] - xs[0]
    bounds = (xs[0] - span, xs[-1] + span)
    starts = _starts(x, y)
    P, sse = fit_batch(x, np.repeat(y[None], len(starts), axis=0), starts, bounds)
    best = int(np.nanargmin(sse)) if np.isfinite(sse).any() else -1
    if best < 0:
        return DoseFit("failed", "the fit did not converge", n, n_doses)
    p, s1 = P[best], float(sse[best])
    s0 = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - s1 / s0 if s0 > 0 else np.nan
    dof = n - 4
    if s0 == 0:
        f_p = 1.0
    elif s1 <= 1e-15 * s0 or dof <= 0:
        f_p = 0.0 if s1 < s0 else 1.0
    else:
        f_stat = ((s0 - s1) / 3.0) / (s1 / dof)
        f_p = float(stats.f.sf(f_stat, 3, dof))
    base = dict(n_wells=n, n_doses=n_doses, r2=float(r2), f_p_value=f_p, raw_params=tuple(map(float, p)))
    if f_p >= flat_alpha:
        return DoseFit("flat", f"no dose effect: the 4PL does not beat a constant (F-test p = {f_p:.3g})", **base)
    if not xs[0] <= p[2] <= xs[-1]:
        side = "below the lowest" if p[2] < xs[0] else "above the highest"
        return DoseFit("ec50_outside_range", f"EC50 {side} tested dose: an extrapolation, not reported", **base)
    # residual bootstrap, all resamples in one batched fit started from the point estimate
    rng = np.random.default_rng(seed)
    fitted = logistic4(x, *p)
    resid = (y - fitted) * np.sqrt(n / max(dof, 1))
    Yb = fitted[None] + rng.choice(resid, size=(n_boot, n), replace=True)
    Pb, _ = fit_batch(x, Yb, np.repeat(p[None], n_boot, axis=0), bounds)
    if ci_method == "percentile":
        a = (1 - ci) / 2 * 100
        lo, hi = np.nanpercentile(Pb, [a, 100 - a], axis=0)
    else:  # bootstrap-t style: estimate +- t quantile x bootstrap SD (better coverage with few wells)
        half = stats.t.ppf(0.5 + ci / 2, dof) * np.nanstd(Pb, axis=0, ddof=1)
        lo, hi = p - half, p + half
    to_ec50 = (lambda v: 10.0 ** v) if log_dose else (lambda v: v)
    return DoseFit("ok", "", bottom=float(p[0]), top=float(p[1]), x50=float(p[2]), hill=float(p[3]),
                   ec50=float(to_ec50(p[2])), bottom_lo=float(lo[0]), bottom_hi=float(hi[0]), top_lo=float(lo[1]),
                   top_hi=float(hi[1]), ec50_lo=float(to_ec50(lo[2])), ec50_hi=float(to_ec50(hi[2])),
                   hill_lo=float(lo[3]), hill_hi=float(hi[3]), n_boot=n_boot, **base)


def plot_dose_curves(curves: list[dict], path, title: str = "", reference: dict | None = None):
    """Dose-response panels: well points and the fitted 4PL (or the fit's status when there is none).

    Parameters
    ----------
    curves : list of dict
        Each ``{"name", "x", "y", "fit": DoseFit, "log_dose": bool, "dose_label": str}``.
    reference : dict, optional
        Horizontal lines, e.g. ``{"negcon median": 0.1, "poscon median": 2.3}``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = max(1, len(curves))
    cols = min(3, k)
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), dpi=100, squeeze=False)
    for ax, c in zip(axes.ravel(), curves):
        x = np.asarray(c["x"], dtype=float)
        y = np.asarray(c["y"], dtype=float)
        xp = np.log10(x) if c.get("log_dose") else x
        ax.scatter(xp, y, s=14, color="#1f3b57", zorder=3)
        fit: DoseFit = c["fit"]
        if fit.status == "ok" or fit.status == "ec50_outside_range":
            grid = np.linspace(np.nanmin(xp[np.isfinite(xp)]), np.nanmax(xp[np.isfinite(xp)]), 200)
            ax.plot(grid, logistic4(grid, *fit.raw_params), color="#c0392b",
                    ls="-" if fit.status == "ok" else ":")
        if fit.status == "ok":
            ax.axvline(fit.x50, color="#c0392b", lw=0.8, ls="--")
            txt = f"EC50 {fit.ec50:.3g} [{fit.ec50_lo:.3g}, {fit.ec50_hi:.3g}]\nHill {fit.hill:.2g}, R² {fit.r2:.2f}"
        else:
            txt = f"{fit.status.upper()}: {fit.note}"
        ax.text(0.02, 0.98, txt, transform=ax.transAxes, va="top", fontsize=7, wrap=True)
        for lbl, v in (reference or {}).items():
            if v is not None and np.isfinite(v):
                ax.axhline(v, color="#888", lw=0.7, ls=":")
                ax.text(1.0, v, lbl, transform=ax.get_yaxis_transform(), fontsize=6, ha="right", va="bottom",
                        color="#666")
        ax.set_title(str(c["name"]), fontsize=9)
        ax.set_xlabel(("log10 " if c.get("log_dose") else "") + c.get("dose_label", "dose"), fontsize=8)
        ax.set_ylabel("readout", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(curves):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
