"""The options of :func:`stratonet.evaluate.classify.evaluate_classifiers` in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

#: The classifiers of the protocol.
CLASSIFIERS = ("svm", "rf", "mlp", "logreg")
#: How missing feature values are filled inside every fitted pipeline.
IMPUTE = ("none", "median", "mean")


@dataclass(frozen=True)
class ClassifyConfig:
    """The thesis's classifier protocol; built once by ``stratonet evaluate classify``, the demo or a caller.

    Attributes
    ----------
    label : str
        Class column (e.g. ``Metadata_moa``).
    features : list of str, optional
        Feature columns (default: numeric non-Metadata columns).
    classifiers : list of str
        Any of ``svm``, ``rf``, ``mlp``, ``logreg``.
    n_train : int
        Size of the class-balanced training sample (split evenly over classes).
    test_size : float
        Held-out fraction (of rows, or of groups with ``group_by``).
    cv : int
        Folds of the cross-validation (0 or 1: none).
    group_by : str, optional
        Column whose groups never straddle train and test (e.g. ``Metadata_Plate`` or a compound column).
    exclude_class : list of str
        Classes removed before anything else (the thesis's filtered experiment).
    seed, n_jobs, rf_trees : int
    permutation_features : int
        Permutation importance is computed for this many features with the highest RF impurity importance
        (0: all features); it costs one RF prediction per feature and repeat.
    permutation_repeats : int
    impute : {"none", "median", "mean"}
        Fill missing feature values inside every fitted pipeline (from its training rows); ``none`` refuses
        features with missing values.
    """

    label: str = "Metadata_moa"
    features: Sequence[str] | None = None
    classifiers: Sequence[str] = CLASSIFIERS
    n_train: int = 3000
    test_size: float = 0.2
    cv: int = 10
    group_by: str | None = None
    seed: int = 0
    n_jobs: int = 1
    rf_trees: int = 100
    exclude_class: Sequence[str] = ()
    permutation_features: int = 100
    permutation_repeats: int = 5
    impute: str = "none"


@dataclass(frozen=True)
class RetrievalConfig:
    """mAP and NSC settings of :func:`stratonet.evaluate.retrieval.evaluate_retrieval`.

    Attributes
    ----------
    features : list of str, optional
        Feature columns (default: numeric non-Metadata columns).
    label : str
        Class column for mAP consistency and NSC (MoA, target).
    treatment : list of str, optional
        Columns naming a treatment (default: compound + concentration columns found).
    batch : str, optional
        Batch column for NSCB (default ``Metadata_Batch``, else ``Metadata_Plate``).
    metric : {"cosine", "correlation", "euclidean"}
    null_size : int
        copairs' null distribution size.
    threshold : float
        BH-corrected significance level.
    seed : int
    """

    features: Sequence[str] | None = None
    label: str = "Metadata_moa"
    treatment: Sequence[str] | None = None
    batch: str | None = None
    metric: str = "cosine"
    null_size: int = 10000
    threshold: float = 0.05
    seed: int = 0
