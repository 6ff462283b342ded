"""The readout specification and the axis model both the readouts and their nested choice use.

:class:`ReadoutSpec` says how to turn a profile into one number per well; :class:`_Axis` is the linear axis fitted
on control wells (``diff``, ``lda``, ``logistic``); :class:`ReadoutResult` holds the scores. They live below
:mod:`stratonet.assay.readouts` and :mod:`stratonet.assay.nested` so that neither imports the other's internals in a
circle: readouts -> nested -> spec, readouts -> spec.
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
            # liblinear's dual solver visits coordinates in random order: seeded, so a rerun gives the same scores
            self.model = LogisticRegression(C=spec.C, class_weight="balanced", max_iter=2000, random_state=self.seed,
                                            **fast).fit(Z, y)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        Z = (X[:, self.cols] - self.center) / self.scale
        if self.pca_ is not None:
            Z = self.pca_.transform(Z)
        if self.model is None:
            return Z @ self.w + self.b
        return self.model.decision_function(Z)
