"""Vector (SVG) line plots for the report, redrawn from the run's tables: dose-response curves with dose units,
and training curves. An SVG stays crisp at any zoom, where an upscaled PNG blurs.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from stratonet.report import numbers as N


def _svg(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    return buf.getvalue()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, selectable
    return plt


def dose_curves_svg(scores: pd.DataFrame, fits: pd.DataFrame, dose_col: str, compound_col: str, log_dose: bool,
                    title: str = "", max_panels: int = 12) -> bytes | None:
    """One panel per (plate, compound): well readouts against dose, the fitted 4PL and its EC50, the control medians.

    Parameters
    ----------
    scores : DataFrame
        ``well_scores.csv`` of ``evaluate assay``: ``plate``, ``role``, ``score`` and the dose and compound columns.
    fits : DataFrame
        ``dose_fits.csv``: ``plate``, ``compound``, ``status``, ``x50``, ``hill``, ``top``, ``bottom``, ``ec50``.
    log_dose : bool
        The fit was on log10 dose (``x50`` is log10 of the EC50); the axis is then logarithmic in real doses.

    Returns
    -------
    bytes or None
        The SVG, or None when the tables lack the columns.
    """
    from stratonet.assay.dose import logistic4

    need = {"plate", "score", dose_col, compound_col}
    if not need <= set(scores.columns) or fits.empty or not {"plate", "compound"} <= set(fits.columns):
        return None
    unit = N.dose_unit(dose_col)
    plt = _plt()
    rows = fits.head(max_panels)
    cols = min(3, len(rows))
    nrow = int(np.ceil(len(rows) / cols))
    fig, axes = plt.subplots(nrow, cols, figsize=(4.4 * cols, 3.4 * nrow), squeeze=False)
    for ax, (_, f) in zip(axes.ravel(), rows.iterrows()):
        plate_rows = scores[scores["plate"].astype(str) == str(f["plate"])]
        sub = plate_rows[plate_rows[compound_col].astype(str) == str(f["compound"])]
        x = pd.to_numeric(sub[dose_col], errors="coerce").to_numpy(float)
        y = sub["score"].to_numpy(float)
        ok = np.isfinite(x) & np.isfinite(y) & ((x > 0) if log_dose else True)
        ax.scatter(x[ok], y[ok], s=14, color="#1f3b57", zorder=3, label="wells")
        status = str(f.get("status", ""))
        if status in ("ok", "ec50_outside_range") and ok.any() and pd.notna(f.get("x50")):
            xs = np.log10(x[ok]) if log_dose else x[ok]
            grid = np.linspace(xs.min(), xs.max(), 200)
            curve = logistic4(grid, f["bottom"], f["top"], f["x50"], f["hill"])
            ax.plot(10 ** grid if log_dose else grid, curve, color="#c0392b", ls="-" if status == "ok" else ":",
                    label="4PL fit")
        if status == "ok" and pd.notna(f.get("ec50")):
            ax.axvline(float(f["ec50"]), color="#c0392b", lw=0.8, ls="--")
            ci = (f" [{N.fmt_num(f['ec50_lo'])}, {N.fmt_num(f['ec50_hi'])}]"
                  if pd.notna(f.get("ec50_lo")) and pd.notna(f.get("ec50_hi")) else "")
            txt = f"EC50 {N.fmt_dose(f['ec50'], unit)}{ci}\nHill {N.fmt_num(f['hill'], 2)}"
            if pd.notna(f.get("r2")):
                txt += f", R² {N.fmt_num(f['r2'], 2)}"
        else:
            txt = f"{status}: {f.get('note', '')}" if status else ""
        ax.text(0.02, 0.98, txt, transform=ax.transAxes, va="top", fontsize=7.5)
        for role, colour in (("negcon", "#4e79a7"), ("poscon", "#f28e2b")):
            ctrl = plate_rows.loc[plate_rows.get("role", pd.Series(dtype=str)).astype(str) == role, "score"]
            if len(ctrl):
                ax.axhline(float(ctrl.median()), color=colour, lw=1, ls=":", label=f"{role} median")
        if log_dose:
            ax.set_xscale("log")
        ax.set_xlabel(f"dose index ({dose_col})" if unit == "dose index" else f"dose ({unit}, log scale)"
                      if log_dose else f"dose ({unit})", fontsize=8)
        ax.set_ylabel("readout (score)", fontsize=8)
        ax.set_title(f"{f['compound']} ({f['plate']})" if scores["plate"].nunique() > 1 else str(f["compound"]),
                     fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6.5, loc="lower right", frameon=False)
    for ax in axes.ravel()[len(rows):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _svg(fig)


def training_curves_svg(epochs: pd.DataFrame, title: str = "") -> bytes | None:
    """Loss and accuracy per epoch from a training run's ``epochs.csv`` (columns named ``*loss*`` and
    ``*acc*`` / ``*top*`` / ``*f1*``), two panels side by side; None without an epoch column or curves."""
    ecol = next((c for c in epochs.columns if str(c).lower() in ("epoch", "epochs")), None)
    if ecol is None or epochs.empty:
        return None
    loss = [c for c in epochs.columns if "loss" in str(c).lower()]
    score = [c for c in epochs.columns if c not in loss and c != ecol and any(
        w in str(c).lower() for w in ("acc", "top", "f1"))]
    panels = [(cols, name) for cols, name in ((loss, "loss"), (score, "score")) if cols]
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.0), squeeze=False)
    x = epochs[ecol].to_numpy()
    for ax, (cols, name) in zip(axes[0], panels):
        for c in cols:
            ax.plot(x, pd.to_numeric(epochs[c], errors="coerce"), marker="o", ms=3, label=str(c))
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(name, fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if name == "score":
            ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _svg(fig)
