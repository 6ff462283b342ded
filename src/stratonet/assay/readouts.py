"""Assay readouts: one value per well from a profile table, always scored out of sample.

Kinds of readout
----------------
feature
    One named feature, as it is (nothing is fitted).
diff, lda, logistic
    A multivariate axis fitted on the control wells: the positive-minus-negative direction in features scaled by
    their pooled within-control SD (``diff``), a shrinkage LDA (``lda``, Ledoit-Wolf), or an L2 logistic regression
    (``logistic``). Optionally on the ``top_k`` features ranked by |Welch t| between the controls, or on ``pca``
    principal components; the ranking and the PCA are fitted inside each fold too.
mahalanobis, cosine
    Distance to the negative controls: Mahalanobis distance with a Ledoit-Wolf covariance of the negcon wells, or
    cosine distance to the negcon centroid. Only the negcon wells are fitted.

Out of sample: a control well's score comes from a model fitted without that well (leave-one-out over the wells
the model is fitted on); every other well is scored by the model fitted on all controls, which it is not part of.
So no well ever scores itself.
"""

from __future__ import annotations

import numpy as np

from stratonet.assay.nested import nested_readout
from stratonet.assay.spec import (AXES, DISTANCES, READOUTS, REFERENCE, SCALINGS, ReadoutResult,  # noqa: F401
                                  ReadoutSpec, _Axis, welch_t)
from stratonet.core.errors import ConfigError

class _Distance:
    """Distance to the negative controls, fitted on negcon rows only."""

    def __init__(self, kind: str):
        self.kind = kind

    def fit(self, Xneg: np.ndarray) -> "_Distance":
        self.centroid = Xneg.mean(axis=0)
        if self.kind == "mahalanobis":
            from sklearn.covariance import LedoitWolf

            self.precision = LedoitWolf().fit(Xneg).precision_
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        d = X - self.centroid
        if self.kind == "mahalanobis":
            return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, self.precision, d), 0))
        norm = np.linalg.norm(X, axis=1) * np.linalg.norm(self.centroid)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos = (X @ self.centroid) / norm
        return 1.0 - np.where(norm > 0, cos, 0.0)


def score_readout(X: np.ndarray, neg: np.ndarray, pos: np.ndarray, spec: ReadoutSpec, names: list[str] | None = None,
                  seed: int = 0) -> ReadoutResult:
    """Score every row of ``X`` out of sample.

    Parameters
    ----------
    X : ndarray, shape (n_wells, n_features)
        Finite feature matrix of one plate.
    neg, pos : ndarray of bool
        Negative- and positive-control rows.
    spec : ReadoutSpec
    names : list of str, optional
        Feature names (for ``feature`` and to report the most used features of ``top_k``).

    Returns
    -------
    ReadoutResult
        ``scores`` oriented so that the positive control scores higher than negcon (axis readouts), or as a
        distance (distance readouts).
    """
    n = len(X)
    names = names or [f"f{i}" for i in range(X.shape[1])]
    if spec.kind == "feature":
        if spec.feature not in names:
            raise ConfigError(f"feature '{spec.feature}' not in the profile's feature columns")
        return ReadoutResult(X[:, names.index(spec.feature)].astype(np.float64), spec, 1, "nothing (one feature)")
    if spec.kind == "nested":
        return nested_readout(X, neg, pos, names, seed=seed)
    scores = np.full(n, np.nan)
    if spec.kind in AXES or spec.kind == "reference":
        train = np.flatnonzero(neg | pos)
        y_all = pos.copy()
        full = _Axis(spec, seed).fit(X[train], y_all[train])
        others = np.setdiff1d(np.arange(n), train)
        if others.size:
            scores[others] = full.score(X[others])
        for i in train:  # leave one control well out
            keep = train[train != i]
            scores[i] = _Axis(spec, seed).fit(X[keep], y_all[keep]).score(X[i : i + 1])[0]
        used = [names[c] for c in full.cols]
        top = []
        if spec.top_k:
            top = used
        return ReadoutResult(scores, spec, len(full.cols), "control wells (leave-one-out for the controls)", top)
    train = np.flatnonzero(neg)
    full = _Distance(spec.kind).fit(X[train])
    others = np.setdiff1d(np.arange(n), train)
    scores[others] = full.score(X[others])
    for i in train:
        keep = train[train != i]
        scores[i] = _Distance(spec.kind).fit(X[keep]).score(X[i : i + 1])[0]
    return ReadoutResult(scores, spec, X.shape[1], "negcon wells (leave-one-out for the negcon wells)")
