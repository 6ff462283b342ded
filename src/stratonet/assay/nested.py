"""The default assay readout: an L2 logistic axis whose settings are chosen by nested cross-validation.

The settings (features kept ``top_k``, L2 strength ``C``, per-feature ``scaling``) are never chosen on the wells they
score:

- each control well is held out in turn (outer leave-one-out); an inner stratified k-fold cross-validation on the
  other control wells picks the settings whose pooled out-of-fold Z' is largest; a model with those settings, fitted
  on those other wells, scores the held-out well;
- every other well (samples, dose series) is scored by a model fitted on all controls with the settings the same
  inner cross-validation picks on all controls.

Nothing here is tuned on a particular plate: the grid below is the usual range of each setting.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import product

import numpy as np

from stratonet.assay.stats import z_prime
from stratonet.assay.spec import ReadoutResult, ReadoutSpec, _Axis


@dataclass(frozen=True)
class NestedGrid:
    """The settings the inner cross-validation chooses among.

    Attributes
    ----------
    top_k : tuple of int
        Features kept by |Welch t| between the training controls (0: all).
    C : tuple of float
        Inverse L2 strengths of the logistic regression.
    scaling : tuple of str
        ``pooled`` (pooled within-control SD) or ``standard`` (per-feature SD).
    inner_folds : int
        Stratified folds of the inner cross-validation (fewer when a class has fewer wells).
    """

    top_k: tuple[int, ...] = (10, 25, 50, 0)
    C: tuple[float, ...] = (0.1, 1.0)
    scaling: tuple[str, ...] = ("pooled", "standard")
    inner_folds: int = 5

    def specs(self) -> list[ReadoutSpec]:
        """Every combination, as readout specs."""
        return [ReadoutSpec("logistic", top_k=k, C=c, scaling=s, solver="liblinear")
                for s, k, c in product(self.scaling, self.top_k, self.C)]


def _inner_scores(X: np.ndarray, y: np.ndarray, specs: list[ReadoutSpec], folds: int,
                  seed: int) -> np.ndarray:
    """Out-of-fold scores of every spec (rows: specs) by a stratified k-fold inside ``X`` only."""
    from sklearn.model_selection import StratifiedKFold

    n_splits = max(2, min(folds, int(y.sum()), int((~y).sum())))
    out = np.full((len(specs), len(y)), np.nan)
    for tr, te in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y):
        for j, spec in enumerate(specs):
            out[j, te] = _Axis(spec, seed).fit(X[tr], y[tr]).score(X[te])
    return out


def choose_settings(X: np.ndarray, y: np.ndarray, grid: NestedGrid = NestedGrid(),
                    seed: int = 0) -> tuple[ReadoutSpec, float, tuple[float, float]]:
    """The spec with the largest pooled out-of-fold Z' inside the training controls ``X`` (``y``: poscon).

    Returns the spec, its inner Z' and its out-of-fold negcon and poscon medians (the readout's honest scale, used
    to put every fold's scores on one scale: 0 = negcon, 1 = poscon). Ties keep the first in grid order.
    """
    specs = grid.specs()
    scores = _inner_scores(X, y, specs, grid.inner_folds, seed)
    z = np.array([z_prime(s[y], s[~y]) for s in scores])
    z = np.where(np.isfinite(z), z, -np.inf)
    best = int(np.argmax(z))
    return specs[best], float(z[best]), (float(np.median(scores[best][~y])), float(np.median(scores[best][y])))


class _Calibrated:
    """A fitted axis whose scores are mapped so that the inner out-of-fold negcon median is 0 and poscon's 1.

    Folds that choose different settings (another C, another number of features) give decision values on different
    scales; the map, fitted on the training controls only, puts them on one scale.
    """

    def __init__(self, Xtr: np.ndarray, ytr: np.ndarray, grid: NestedGrid, seed: int):
        self.spec, self.inner_z, (self.lo, hi) = choose_settings(Xtr, ytr, grid, seed)
        self.span = hi - self.lo if hi != self.lo else 1.0
        self.model = _Axis(self.spec, seed).fit(Xtr, ytr)

    def score(self, X: np.ndarray) -> np.ndarray:
        return (self.model.score(X) - self.lo) / self.span


def _outer_fold(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, grid: NestedGrid,
                seed: int) -> tuple[np.ndarray, _Calibrated]:
    """Settings chosen inside ``Xtr`` only, a model with them fitted on ``Xtr``, and its scores of ``Xte``."""
    model = _Calibrated(Xtr, ytr, grid, seed)
    return model.score(Xte), model


def nested_readout(X: np.ndarray, neg: np.ndarray, pos: np.ndarray, names: list[str] | None = None,
                   grid: NestedGrid = NestedGrid(), seed: int = 0) -> ReadoutResult:
    """Score every row with settings chosen by nested cross-validation on the controls (see the module doc).

    Parameters
    ----------
    X : ndarray, shape (n_wells, n_features)
        Finite features of one plate.
    neg, pos : ndarray of bool
        Control rows.
    names : list of str, optional
        Feature names, to report the features the final model uses.

    Returns
    -------
    ReadoutResult
        ``settings`` holds the settings used for the non-control wells, their inner Z', and how often each setting
        was chosen across the outer folds. Scores are on the controls' scale: 0 = negcon, 1 = poscon (medians of
        the inner out-of-fold scores).
    """
    names = names or [f"f{i}" for i in range(X.shape[1])]
    n = len(X)
    ctrl = np.flatnonzero(neg | pos)
    y = pos[ctrl]
    scores = np.full(n, np.nan)
    chosen: list[str] = []
    for i in range(len(ctrl)):  # outer leave-one-out over the control wells
        keep = np.arange(len(ctrl)) != i
        s, fold = _outer_fold(X[ctrl[keep]], y[keep], X[ctrl[i: i + 1]], grid, seed)
        scores[ctrl[i]] = s[0]
        chosen.append(fold.spec.label)
    others = np.setdiff1d(np.arange(n), ctrl)
    s, final = _outer_fold(X[ctrl], y, X[others], grid, seed)
    if others.size:
        scores[others] = s
    final_spec, inner_z, model = final.spec, final.inner_z, final.model
    settings = {"top_k": final_spec.top_k or "all", "C": final_spec.C, "scaling": final_spec.scaling,
                "label": final_spec.label, "inner_z_prime": inner_z,
                "outer_choices": dict(Counter(chosen).most_common()),
                "grid": {"top_k": [k or "all" for k in grid.top_k], "C": list(grid.C), "scaling": list(grid.scaling),
                         "inner_folds": grid.inner_folds},
                "protocol": "outer leave-one-out over the control wells, inner stratified k-fold on the others; "
                            "non-control wells scored by a model fitted on all controls with inner-CV settings"}
    top = [names[c] for c in model.cols] if final_spec.top_k else []
    return ReadoutResult(scores, ReadoutSpec("nested"), len(model.cols),
                         "control wells (nested CV: outer leave-one-out, inner k-fold)", top, settings)
