"""The thesis's classifier protocol: split, balance the training set, fit SVM / RF / MLP / logistic regression.

1. Split train / test first (stratified, or group-aware with ``group_by`` so whole plates or compounds stay on one
   side).
2. Draw a class-balanced training set from the training split only (default 3,000 rows; with replacement only for
   classes that are too small).
3. Score on the realistic, unbalanced test set, and on a balanced down-sample of it.
4. Repeat 2-3 inside k-fold CV (default 10) for mean +- sd.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.core.controlnames import found_values, metadata_columns
from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.evaluate.config import CLASSIFIERS, IMPUTE, ClassifyConfig
from stratonet.evaluate.metrics import METRIC_KEYS, classification_metrics, confusion, report_table
from stratonet.evaluate.sampling import (balanced_sample, balanced_subset, check_group_folds, kfold_indices,
                                         oversampled, train_test_split_indices)
from stratonet.core.progress import get_logger, track
from stratonet.core.tables import check_finite, feature_columns, non_numeric_columns

CLASSIFIER_NAMES = {
    "svm": "SVM (RBF)", "rf": "random forest", "mlp": "MLP", "logreg": "logistic regression",
}

NA_ADVICE = ("use --impute median (fitted on each training split), or drop such columns with "
             "'stratonet profile --na-cutoff 0'")


def make_classifier(name: str, seed: int = 0, n_jobs: int = 1, rf_trees: int = 100, impute: str = "none"):
    """A scikit-learn pipeline ([imputation +] standard scaling + classifier) for one of :data:`CLASSIFIERS`.

    ``impute`` ``median`` or ``mean`` puts a ``SimpleImputer`` first, so missing values are filled from the
    training rows only.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if name == "svm":
        clf = SVC(kernel="rbf", C=1.0, gamma="scale", random_state=seed)
    elif name == "rf":
        clf = RandomForestClassifier(n_estimators=rf_trees, n_jobs=n_jobs, random_state=seed)
    elif name == "mlp":
        clf = MLPClassifier(hidden_layer_sizes=(256,), early_stopping=True, max_iter=300, random_state=seed)
    elif name == "logreg":
        clf = LogisticRegression(max_iter=1000, C=1.0, random_state=seed)
    else:
        raise ConfigError(f"unknown classifier '{name}' (use {', '.join(CLASSIFIERS)})")
    if impute not in IMPUTE:
        raise ConfigError(f"unknown imputation '{impute}' (use {', '.join(IMPUTE)})")
    if impute != "none":
        from sklearn.impute import SimpleImputer

        return make_pipeline(SimpleImputer(strategy=impute, keep_empty_features=True), StandardScaler(), clf)
    return make_pipeline(StandardScaler(), clf)


def _prepare(df: pd.DataFrame, label: str, features, exclude_class: Sequence[str],
             impute: str = "none") -> tuple[pd.DataFrame, list[str]]:
    if label not in df.columns:
        raise StratoNetError(f"label column '{label}' not in profiles (Metadata columns: {metadata_columns(df)}); "
                             "name the class column with --label COLUMN")
    feats = feature_columns(df, features)
    if features is None and (text := non_numeric_columns(df)):
        from stratonet.core.progress import warn

        warn(f"{len(text)} non-numeric column(s) left out of the features: {', '.join(map(str, text[:8]))}"
             + (" ..." if len(text) > 8 else ""))
    if not feats:
        raise StratoNetError("no numeric feature columns in profiles")
    data = df[df[label].notna()]
    if exclude_class:
        unknown = [c for c in exclude_class if c not in set(data[label].astype(str))]
        if unknown:
            raise StratoNetError(f"--exclude-class {unknown}: no such class in '{label}'")
        data = data[~data[label].astype(str).isin(set(exclude_class))]
    values = data[feats].to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        bad = data[feats].columns[np.isinf(values).any(axis=0)]
        raise StratoNetError(f"{len(bad)} feature column(s) contain infinite values, e.g. {list(bad[:3])} "
                             "(run 'stratonet profile', which sets them to NaN)")
    bad = data[feats].isna().any()
    if bad.any() and impute == "none":
        raise StratoNetError(
            f"{int(bad.sum())} feature column(s) contain missing values, e.g. {list(bad[bad].index[:3])}: {NA_ADVICE}"
        )
    if data[label].nunique() < 2:
        raise StratoNetError(f"'{label}' needs at least two classes to classify (it has "
                             f"{found_values(data, label, 5)}); name another class column with --label")
    return data.reset_index(drop=True), feats


def _summary(folds: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for key in METRIC_KEYS:
        vals = np.array([f[key] for f in folds], dtype=float)
        out[key] = {"mean": float(vals.mean()), "sd": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}
    return out


@dataclass
class ClassifyResult:
    """What :func:`evaluate_classifiers` found: the ``metrics.json`` content and what the tables are made of.

    Attributes
    ----------
    metrics : dict
        See :func:`evaluate_classifiers`.
    test_rows : DataFrame
        The held-out rows (their plate / well / site go to ``predictions_<clf>.csv``).
    y_test : ndarray
        Their true classes.
    predictions, probabilities : dict
        Per classifier the predicted classes of the test rows and, where it has ``predict_proba``, the
        probability of the predicted class.
    fold_rows : list of dict
        One row per classifier and CV fold (``cv_folds.csv``).
    """

    metrics: dict
    test_rows: pd.DataFrame
    y_test: np.ndarray
    predictions: dict
    probabilities: dict
    fold_rows: list
    cfg: ClassifyConfig
    _split: "_Split" = field(repr=False)
    _fitted: dict = field(default_factory=dict, repr=False)
    _importances: tuple | None = field(default=None, repr=False)

    def importances(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """RF impurity and permutation importance on the test set (computed once, on first use; see
        :func:`importances`)."""
        if self._importances is None:
            cfg, sp = self.cfg, self._split
            rf = self._fitted.get("rf") or make_classifier("rf", cfg.seed, cfg.n_jobs, cfg.rf_trees, cfg.impute).fit(
                sp.X[sp.fit_idx], sp.y[sp.fit_idx])
            self._importances = importances(rf, sp.X[sp.test_idx], sp.y[sp.test_idx], sp.feats,
                                            cfg.permutation_features, cfg.permutation_repeats, cfg.seed, cfg.n_jobs)
        return self._importances


@dataclass
class _Split:
    """The matrix, the classes and the protocol's row sets."""

    data: pd.DataFrame
    feats: list[str]
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None
    classes: list[str]
    train_idx: np.ndarray
    test_idx: np.ndarray
    fit_idx: np.ndarray
    bal_test_idx: np.ndarray
    n_repeated: int


def evaluate_classifiers(df: pd.DataFrame, cfg: ClassifyConfig = ClassifyConfig(), name: str = "features",
                         provenance: dict | None = None) -> ClassifyResult:
    """Fit and score the classifiers with the balanced-training protocol.

    Parameters
    ----------
    df : DataFrame
        Profiles with a label column and numeric features.
    cfg : ClassifyConfig
        The protocol's settings (see :class:`stratonet.evaluate.config.ClassifyConfig`).
    name : str
        Feature-set name stored as ``feature_set``.
    provenance : dict, optional
        The input table's provenance, copied into the result.

    Returns
    -------
    ClassifyResult
        ``metrics``: ``{"feature_set", "provenance", "label", "classes", "n_samples", "n_features", "protocol",
        "classifiers": {clf: {<metrics>, "balanced_test": {<metrics>}, "cv": {metric: {"mean", "sd"}},
        "cv_pooled": {<metrics>}, "cv_pooled_macro_f1", "cv_fold_mean_macro_f1", ...}}}``;
        :func:`write_classify` saves it with its tables.

        With CV, two summaries are kept and labelled: ``cv`` / ``cv_fold_mean_*`` average the per-fold scores
        (each fold's macro over the classes that fold has), ``cv_pooled`` / ``cv_pooled_*`` score all
        out-of-fold predictions at once. With grouped folds that lack classes, the pooled figure is the one
        to quote; ``protocol.cv_folds_lacking_classes`` lists those folds.
    """
    _check_options(df, cfg)
    sp = _split(df, cfg, name)
    result: dict = {
        "feature_set": name,
        "provenance": provenance or {},
        "label": cfg.label,
        "classes": sp.classes,
        "n_samples": int(len(sp.y)),
        "n_features": len(sp.feats),
        "protocol": {
            "test_size": cfg.test_size, "n_train_balanced": int(len(sp.fit_idx)), "n_test": int(len(sp.test_idx)),
            "n_test_balanced": int(len(sp.bal_test_idx)), "cv_folds": cfg.cv, "group_by": cfg.group_by,
            "exclude_class": list(cfg.exclude_class), "seed": cfg.seed, "rf_trees": cfg.rf_trees,
            "class_counts": {c: int(n) for c, n in zip(*np.unique(sp.y, return_counts=True))},
            "impute": cfg.impute,
            "n_missing_values_imputed": int(sp.data[sp.feats].isna().to_numpy().sum()) if cfg.impute != "none" else 0,
            "n_train_rows_available": int(len(sp.train_idx)), "n_train_repeated_rows": sp.n_repeated,
        },
        "classifiers": {},
    }
    from stratonet.evaluate.plate_effects import plate_effect

    result["plate_effect"] = plate_effect(sp.data, sp.feats, provenance)
    fitted, predictions, probabilities = _fit_held_out(sp, cfg, result)
    fold_rows = _cross_validate(sp, cfg, result) if cfg.cv and cfg.cv > 1 else []
    return ClassifyResult(result, sp.data.iloc[sp.test_idx], sp.y[sp.test_idx], predictions, probabilities,
                          fold_rows, cfg, sp, fitted)


def _check_options(df: pd.DataFrame, cfg: ClassifyConfig) -> None:
    """Refuse unknown classifiers and a ``group_by`` column that is absent or has one value."""
    for c in cfg.classifiers:
        if c not in CLASSIFIERS:
            raise ConfigError(f"unknown classifier '{c}' (use {', '.join(CLASSIFIERS)})")
    group_by = cfg.group_by
    if group_by is not None and group_by not in df.columns:
        raise StratoNetError(f"--group-by column '{group_by}' not in profiles (Metadata columns: "
                             f"{metadata_columns(df)})")
    if group_by is not None and df[group_by].nunique() < 2:
        raise StratoNetError(f"--group-by {group_by} has one value ({df[group_by].iloc[0]}): a group-aware split "
                             "needs at least two groups; on one plate group by well (--group-by Metadata_Well) or "
                             "leave --group-by out")


def _split(df: pd.DataFrame, cfg: ClassifyConfig, name: str) -> _Split:
    """Steps 1-2 of the protocol: the train / test split and the class-balanced training sample."""
    log = get_logger()
    data, feats = _prepare(df, cfg.label, cfg.features, cfg.exclude_class, cfg.impute)
    check_finite(data, feats, name or "profiles", dtype=np.float32)
    X = data[feats].to_numpy(dtype=np.float32)
    y = data[cfg.label].astype(str).to_numpy()
    groups = data[cfg.group_by].astype(str).to_numpy() if cfg.group_by else None
    classes = sorted(np.unique(y))

    check_group_folds(groups, cfg.cv, cfg.group_by)  # before a minute of fitting, not after
    train_idx, test_idx = train_test_split_indices(y, cfg.test_size, groups, cfg.seed)
    fit_idx = balanced_sample(y, train_idx, cfg.n_train, cfg.seed)
    n_repeated = oversampled(fit_idx)
    if n_repeated:
        log.warning("the balanced training sample of %d rows repeats %d row(s): %d training row(s) were drawn "
                    "with replacement to reach --n-train %d", len(fit_idx), n_repeated, len(train_idx), cfg.n_train)
    bal_test_idx = balanced_subset(y, test_idx, cfg.seed)
    missing = sorted(set(classes) - set(y[train_idx]))
    if missing:
        log.warning("classes absent from the training split (group-aware split): %s", missing)
    return _Split(data, feats, X, y, groups, classes, train_idx, test_idx, fit_idx, bal_test_idx, n_repeated)


def _fit_held_out(sp: _Split, cfg: ClassifyConfig, result: dict) -> tuple[dict, dict, dict]:
    """Step 3: fit each classifier on the balanced sample, score the test set and its balanced down-sample."""
    fitted, predictions, probabilities = {}, {}, {}
    X, y, classes = sp.X, sp.y, sp.classes
    classifiers = list(cfg.classifiers)
    for clf_name in track(classifiers, description="classifiers (held-out test)", total=len(classifiers)):
        model = make_classifier(clf_name, cfg.seed, cfg.n_jobs, cfg.rf_trees, cfg.impute).fit(X[sp.fit_idx],
                                                                                            y[sp.fit_idx])
        pred = model.predict(X[sp.test_idx])
        pred_bal = model.predict(X[sp.bal_test_idx])
        scores = classification_metrics(y[sp.test_idx], pred, classes)
        scores["balanced_test"] = classification_metrics(y[sp.bal_test_idx], pred_bal, classes)
        result["classifiers"][clf_name] = scores
        fitted[clf_name] = model
        predictions[clf_name] = pred
        if hasattr(model, "predict_proba"):  # SVC without probability=True has none
            probabilities[clf_name] = model.predict_proba(X[sp.test_idx]).max(axis=1)
    return fitted, predictions, probabilities


def _cross_validate(sp: _Split, cfg: ClassifyConfig, result: dict) -> list[dict]:
    """Step 4: the balanced protocol inside k-fold CV; per-fold and pooled out-of-fold summaries."""
    X, y, classes, cv = sp.X, sp.y, sp.classes, cfg.cv
    classifiers = list(cfg.classifiers)
    fold_rows = []
    folds = list(kfold_indices(y, cv, sp.groups, cfg.seed))
    per_clf: dict[str, list] = {c: [] for c in classifiers}
    oof = {c: np.empty(len(y), dtype=y.dtype) for c in classifiers}  # out-of-fold predictions
    in_test = np.zeros(len(y), bool)
    folds_lacking = []
    for k, (tr, te) in enumerate(track(folds, description=f"{cv}-fold CV", total=len(folds))):
        sample = balanced_sample(y, tr, cfg.n_train, cfg.seed + 1 + k)
        absent = sorted(set(classes) - set(y[te]))
        if absent:
            folds_lacking.append({"fold": k, "classes_absent_from_test": absent})
        in_test[te] = True
        for clf_name in classifiers:
            model = make_classifier(clf_name, cfg.seed, cfg.n_jobs, cfg.rf_trees, cfg.impute).fit(X[sample],
                                                                                                y[sample])
            pred = model.predict(X[te])
            oof[clf_name][te] = pred
            # Macro averages over the classes this fold has (in truth or prediction): a class absent from
            # the fold has no F1, and scoring it 0 would drag the fold mean down.
            m = classification_metrics(y[te], pred, sorted(set(y[te]) | set(pred)))
            per_clf[clf_name].append(m)
            fold_rows.append({"classifier": clf_name, "fold": k, **m})
    if folds_lacking:
        get_logger().warning("%d of %d CV folds lack a class in their test part (e.g. fold %d: %s); compare the "
                             "pooled out-of-fold metrics", len(folds_lacking), len(folds), folds_lacking[0]["fold"],
                             folds_lacking[0]["classes_absent_from_test"])
    result["protocol"]["cv_folds_lacking_classes"] = folds_lacking
    counts = result["protocol"]["class_counts"]
    result["protocol"]["classes_smaller_than_folds"] = {c: n for c, n in counts.items() if n < cv}
    for clf_name in classifiers:
        entry = result["classifiers"][clf_name]
        entry["cv"] = _summary(per_clf[clf_name])
        pooled = classification_metrics(y[in_test], oof[clf_name][in_test], classes)
        entry["cv_pooled"] = pooled
        for key in ("accuracy", "macro_f1"):
            entry[f"cv_pooled_{key}"] = pooled[key]
            entry[f"cv_fold_mean_{key}"] = entry["cv"][key]["mean"]
            entry[f"cv_fold_sd_{key}"] = entry["cv"][key]["sd"]
    return fold_rows


def write_classify(res: ClassifyResult, out_dir: str | Path) -> Path:
    """Save a :class:`ClassifyResult` in ``out_dir`` (the CLI uses ``<run>/evaluate/classify/<name>``):
    ``metrics.json``, ``confusion_<clf>.csv``, ``confusion_<clf>_normalized.csv``, ``confusion_<clf>.png``,
    ``classification_report_<clf>.csv``, ``predictions_<clf>.csv``, ``importance_rf_impurity.csv``,
    ``importance_permutation.csv`` and ``cv_folds.csv``. Returns the folder."""
    from stratonet.core.runinfo import write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classes, name, y_test = res.metrics["classes"], res.metrics["feature_set"], res.y_test
    for clf_name in res.cfg.classifiers:
        _write_confusion(out, clf_name, y_test, res.predictions[clf_name], classes, name)
        report_table(y_test, res.predictions[clf_name], classes).to_csv(
            out / f"classification_report_{clf_name}.csv", index=False)
        _write_predictions(out, clf_name, res.test_rows, y_test, res.predictions[clf_name],
                           res.probabilities.get(clf_name))
    if res.fold_rows:
        pd.DataFrame(res.fold_rows).to_csv(out / "cv_folds.csv", index=False)
    imp, perm = res.importances()
    imp.to_csv(out / "importance_rf_impurity.csv", index=False)
    perm.to_csv(out / "importance_permutation.csv", index=False)
    write_json(res.metrics, out / "metrics.json")
    return out


def importances(
    rf_pipeline, X_test: np.ndarray, y_test: np.ndarray, features: list[str], top: int = 100, repeats: int = 5,
    seed: int = 0, n_jobs: int = 1, max_rows: int = 2000,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """RF impurity importance (all features) and permutation importance on the test set (top features).

    Returns
    -------
    impurity, permutation : DataFrame
        ``feature, importance, rank`` and ``feature, importance_mean, importance_sd, rank`` (accuracy drop).
    """
    forest = rf_pipeline[-1]
    impurity = pd.DataFrame({"feature": features, "importance": forest.feature_importances_})
    impurity = impurity.sort_values("importance", ascending=False, ignore_index=True)
    impurity["rank"] = np.arange(1, len(impurity) + 1)
    chosen = impurity["feature"].tolist()[: top] if top and top < len(features) else list(features)
    cols = [features.index(f) for f in chosen]
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(y_test), size=min(max_rows, len(y_test)), replace=False)
    Xs = X_test[rows].copy()
    ys = y_test[rows]
    baseline = float(np.mean(rf_pipeline.predict(Xs) == ys))
    drops = np.zeros((len(cols), repeats))
    # Same definition as sklearn.inspection.permutation_importance (accuracy drop when one column is shuffled),
    # restricted to the chosen columns.
    for i, col in enumerate(track(cols, description="permutation importance", total=len(cols))):
        saved = Xs[:, col].copy()
        for r in range(repeats):
            Xs[:, col] = rng.permutation(saved)
            drops[i, r] = baseline - float(np.mean(rf_pipeline.predict(Xs) == ys))
        Xs[:, col] = saved
    perm = pd.DataFrame({"feature": chosen, "importance_mean": drops.mean(axis=1),
                         "importance_sd": drops.std(axis=1)})
    perm = perm.sort_values("importance_mean", ascending=False, ignore_index=True)
    perm["rank"] = np.arange(1, len(perm) + 1)
    perm["n_rows"] = len(rows)
    return impurity, perm


def _write_predictions(out: Path, clf: str, rows: pd.DataFrame, y_true, y_pred, proba) -> None:
    """``predictions_<clf>.csv``: the test rows' plate / well / site, true and predicted class and, when the
    classifier has ``predict_proba``, the probability of the predicted class (the report's confident examples)."""
    keys = [c for c in ("Metadata_Plate", "Metadata_Well", "Metadata_Site") if c in rows.columns]
    table = rows[keys].reset_index(drop=True).assign(true=y_true, predicted=y_pred)
    if proba is not None:
        table["probability"] = proba
    table.to_csv(out / f"predictions_{clf}.csv", index=False)


def _write_confusion(out: Path, clf: str, y_true, y_pred, classes: list[str], name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = confusion(y_true, y_pred, classes)
    counts = pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=classes)
    counts.to_csv(out / f"confusion_{clf}.csv")
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = cm / cm.sum(axis=1, keepdims=True)
    norm = np.nan_to_num(norm)
    pd.DataFrame(norm, index=pd.Index(classes, name="true"), columns=classes).to_csv(
        out / f"confusion_{clf}_normalized.csv")
    n = len(classes)
    size = max(4.0, 0.45 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=90, fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{name}: {CLASSIFIER_NAMES[clf]} (row-normalised)", fontsize=9)
    if n <= 25:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out / f"confusion_{clf}.png", dpi=110)
    plt.close(fig)
