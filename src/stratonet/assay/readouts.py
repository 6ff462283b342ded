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

from dataclasses import dataclass, field

import numpy as np

from stratonet.core.errors import ConfigError

AXES = ("diff", "lda", "logistic")
DISTANCES = ("mahalanobis", "cosine")
READOUTS = ("feature", "nested", "reference") + AXES + DISTANCES
SCALINGS = ("pooled", "standard")


@dataclass
class ReadoutSpec:
    """How to turn a profile into one number per well.

    Attributes
    ----------
    kind : str
        One of :data:`READOUTS`.
    feature : str, optional
        The feature for ``kind="feature"``.
    top_k : int
        Axis readouts: keep the ``top_k`` features with the largest |Welch t| between the training controls
        (0: all features).
    pca : int
        Axis readouts: project on this many principal components of the training controls first (0: none).
    C : float
        Inverse L2 strength of ``logistic``.
    scaling : {"pooled", "standard"}
        Axis readouts: divide each feature by its pooled within-control SD (``pooled``) or by its SD over all
        training controls (``standard``, per-feature standardisation).
    solver : {"lbfgs", "liblinear"}
        scikit-learn solver of ``logistic``; ``liblinear`` (dual) is much faster with few wells and many features.

    ``kind="reference"`` is the fixed reference readout (:data:`REFERENCE`: all features, per-feature
    standardised, L2 logistic, C = 0.1) whatever the other fields say. ``kind="nested"`` chooses ``top_k``, ``C`` and ``scaling`` of an L2 logistic axis by nested cross-validation
    inside the controls (see :mod:`stratonet.assay.nested`).
    """

    kind: str = "diff"
    feature: str | None = None
    top_k: int = 0
    pca: int = 0
    C: float = 1.0
    scaling: str = "pooled"
    solver: str = "lbfgs"

    def __post_init__(self) -> None:
        if self.kind not in READOUTS:
            raise ConfigError(f"unknown readout '{self.kind}' (use {', '.join(READOUTS)})")
        if self.kind == "feature" and not self.feature:
            raise ConfigError("readout 'feature' needs a feature name (--feature)")
        if self.top_k < 0 or self.pca < 0:
            raise ConfigError("--top-k and --pca must be >= 0")
        if self.kind == "reference":  # fixed settings, so that plates and feature sets can be compared
            self.top_k, self.pca, self.C, self.scaling, self.solver = 0, 0, 0.1, "standard", "liblinear"
        if self.solver not in ("lbfgs", "liblinear"):
            raise ConfigError(f"unknown logistic solver '{self.solver}' (use lbfgs or liblinear)")
        if self.scaling not in SCALINGS:
            raise ConfigError(f"unknown readout scaling '{self.scaling}' (use {', '.join(SCALINGS)})")

    @property
    def label(self) -> str:
        """A short name, e.g. ``diff[top50]`` or ``feature:Cells_Intensity_MeanIntensity_GFP``."""
        if self.kind == "feature":
            return f"feature:{self.feature}"
        extra = [f"top{self.top_k}"] if self.top_k and self.kind in AXES else []
        extra += [f"pca{self.pca}"] if self.pca and self.kind in AXES else []
        extra += ["std"] if self.scaling == "standard" and self.kind in AXES else []
        extra += [f"C={self.C:g}"] if self.C != 1.0 and self.kind == "logistic" else []
        return self.kind + (f"[{','.join(extra)}]" if extra else "")


#: The fixed reference readout reported beside the default one, so plates and feature sets can be compared: every
#: feature, standardised per feature on the training controls, L2 logistic regression with a fixed C = 0.1.
REFERENCE = ReadoutSpec("reference")


@dataclass
class ReadoutResult:
    """Scores (one per row, higher = further towards the positive control or away from negcon) and notes."""

    scores: np.ndarray
    spec: ReadoutSpec
    n_features: int
    fitted_on: str
    top_features: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


def welch_t(X: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Welch t statistic of every column between the rows of two boolean masks (0 where undefined)."""
    xp, xn = X[pos], X[neg]
    se = np.sqrt(xp.var(axis=0, ddof=1) / max(1, len(xp)) + xn.var(axis=0, ddof=1) / max(1, len(xn)))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (xp.mean(axis=0) - xn.mean(axis=0)) / se
    t[~np.isfinite(t)] = 0.0
    return t


class _Axis:
    """An axis readout fitted on control rows (boolean ``y``: True = positive control)."""

    def __init__(self, spec: ReadoutSpec, seed: int = 0):
        self.spec = spec
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> "_Axis":
        spec = self.spec
        cols = np.arange(X.shape[1])
        if spec.top_k and spec.top_k < X.shape[1]:
            t = welch_t(X, y, ~y)
            cols = np.sort(np.argsort(-np.abs(t), kind="stable")[: spec.top_k])
        self.cols = cols
        Z = X[:, cols]
        if spec.scaling == "standard":  # per-feature SD over the training controls
            sd = Z.std(axis=0, ddof=1)
        else:  # the pooled within-control SD (robust to the class imbalance of the controls)
            resid = np.where(y[:, None], Z - Z[y].mean(axis=0), Z - Z[~y].mean(axis=0))
            sd = np.sqrt((resid**2).sum(axis=0) / max(1, len(Z) - 2))
        sd[~(sd > 0)] = 1.0
        self.center, self.scale = Z.mean(axis=0), sd
        Z = (Z - self.center) / self.scale
        self.pca_ = None
        if spec.pca:
            from sklearn.decomposition import PCA

            k = min(spec.pca, Z.shape[0] - 1, Z.shape[1])
            self.pca_ = PCA(n_components=k, random_state=self.seed).fit(Z)
            Z = self.pca_.transform(Z)
        if spec.kind == "diff":
            self.w = Z[y].mean(axis=0) - Z[~y].mean(axis=0)
            self.b = -float(self.w @ (Z[y].mean(axis=0) + Z[~y].mean(axis=0))) / 2
            self.model = None
        elif spec.kind == "lda":
            from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

            self.model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(Z, y)
        else:
            from sklearn.linear_model import LogisticRegression

            fast = dict(solver="liblinear", dual=Z.shape[1] > Z.shape[0]) if spec.solver == "liblinear" else {}
            self.model = LogisticRegression(C=spec.C, class_weight="balanced", max_iter=2000, **fast).fit(Z, y)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        Z = (X[:, self.cols] - self.center) / self.scale
        if self.pca_ is not None:
            Z = self.pca_.transform(Z)
        if self.model is None:
            return Z @ self.w + self.b
        return self.model.decision_function(Z)


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
        from stratonet.assay.nested import nested_readout

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
