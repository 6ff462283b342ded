"""The thesis's classifier protocol: split, balance the training set, fit SVM / RF / MLP / logistic regression.

1. Split train / test first (stratified, or group-aware with ``group_by`` so whole plates or compounds stay on one
   side).
2. Draw a class-balanced training set from the training split only (default 3,000 rows; with replacement only for
   classes that are too small).
3. Score on the realistic, unbalanced test set, and on a balanced down-sample of it.
4. Repeat 2-3 inside k-fold CV (default 10) for mean +- sd.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.core.controlnames import found_values, metadata_columns
from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.evaluate.metrics import METRIC_KEYS, classification_metrics, confusion, report_table
from stratonet.evaluate.sampling import (balanced_sample, balanced_subset, check_group_folds, kfold_indices,
                                         oversampled, train_test_split_indices)
from stratonet.core.progress import get_logger, track
from stratonet.core.tables import check_finite, feature_columns, non_numeric_columns

CLASSIFIERS = ("svm", "rf", "mlp", "logreg")
CLASSIFIER_NAMES = {
    "svm": "SVM (RBF)", "rf": "random forest", "mlp": "MLP", "logreg": "logistic regression",
}


IMPUTE = ("none", "median", "mean")
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


def evaluate_classifiers(
    df: pd.DataFrame,
    label: str = "Metadata_moa",
    features: Sequence[str] | None = None,
    classifiers: Sequence[str] = CLASSIFIERS,
    n_train: int = 3000,
    test_size: float = 0.2,
    cv: int = 10,
    group_by: str | None = None,
    exclude_class: Sequence[str] = (),
    seed: int = 0,
    n_jobs: int = 1,
    rf_trees: int = 100,
    permutation_features: int = 100,
    permutation_repeats: int = 5,
    impute: str = "none",
    out_dir: str | Path | None = None,
    name: str = "features",
    provenance: dict | None = None,
) -> dict:
    """Fit and score the classifiers with the balanced-training protocol.

    Parameters
    ----------
    df : DataFrame
        Profiles with a label column and numeric features.
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
    out_dir : path, optional
        Folder written directly (the CLI uses ``<run>/evaluate/classify/<name>``): ``metrics.json``,
        ``confusion_<clf>.csv``, ``confusion_<clf>_normalized.csv``, ``confusion_<clf>.png``,
        ``classification_report_<clf>.csv``, ``predictions_<clf>.csv``, ``importance_rf_impurity.csv``,
        ``importance_permutation.csv``,
        ``cv_folds.csv``.
    name : str
        Feature-set name stored as ``feature_set``.
    provenance : dict, optional
        The input table's provenance, copied into the result.

    Returns
    -------
    dict
        ``{"feature_set", "provenance", "label", "classes", "n_samples", "n_features", "protocol",
        "classifiers": {clf: {<metrics>, "balanced_test": {<metrics>}, "cv": {metric: {"mean", "sd"}},
        "cv_pooled": {<metrics>}, "cv_pooled_macro_f1", "cv_fold_mean_macro_f1", ...}}}``.

        With CV, two summaries are kept and labelled: ``cv`` / ``cv_fold_mean_*`` average the per-fold scores
        (each fold's macro over the classes that fold has), ``cv_pooled`` / ``cv_pooled_*`` score all
        out-of-fold predictions at once. With grouped folds that lack classes, the pooled figure is the one
        to quote; ``protocol.cv_folds_lacking_classes`` lists those folds.
    """
    log = get_logger()
    classifiers = list(classifiers)
    for c in classifiers:
        if c not in CLASSIFIERS:
            raise ConfigError(f"unknown classifier '{c}' (use {', '.join(CLASSIFIERS)})")
    if group_by is not None and group_by not in df.columns:
        raise StratoNetError(f"--group-by column '{group_by}' not in profiles (Metadata columns: "
                             f"{metadata_columns(df)})")
    if group_by is not None and df[group_by].nunique() < 2:
        raise StratoNetError(f"--group-by {group_by} has one value ({df[group_by].iloc[0]}): a group-aware split "
                             "needs at least two groups; on one plate group by well (--group-by Metadata_Well) or "
                             "leave --group-by out")
    data, feats = _prepare(df, label, features, exclude_class, impute)
    check_finite(data, feats, name or "profiles", dtype=np.float32)
    n_missing = int(data[feats].isna().to_numpy().sum())
    X = data[feats].to_numpy(dtype=np.float32)
    y = data[label].astype(str).to_numpy()
    groups = data[group_by].astype(str).to_numpy() if group_by else None
    classes = sorted(np.unique(y))

    check_group_folds(groups, cv, group_by)  # before a minute of fitting, not after
    train_idx, test_idx = train_test_split_indices(y, test_size, groups, seed)
    fit_idx = balanced_sample(y, train_idx, n_train, seed)
    n_repeated = oversampled(fit_idx)
    if n_repeated:
        log.warning("the balanced training sample of %d rows repeats %d row(s): %d training row(s) were drawn "
                    "with replacement to reach --n-train %d", len(fit_idx), n_repeated, len(train_idx), n_train)
    bal_test_idx = balanced_subset(y, test_idx, seed)
    missing = sorted(set(classes) - set(y[train_idx]))
    if missing:
        log.warning("classes absent from the training split (group-aware split): %s", missing)

    result: dict = {
        "feature_set": name,
        "provenance": provenance or {},
        "label": label,
        "classes": classes,
        "n_samples": int(len(y)),
        "n_features": len(feats),
        "protocol": {
            "test_size": test_size, "n_train_balanced": int(len(fit_idx)), "n_test": int(len(test_idx)),
            "n_test_balanced": int(len(bal_test_idx)), "cv_folds": cv, "group_by": group_by,
            "exclude_class": list(exclude_class), "seed": seed, "rf_trees": rf_trees,
            "class_counts": {c: int(n) for c, n in zip(*np.unique(y, return_counts=True))},
            "impute": impute, "n_missing_values_imputed": n_missing if impute != "none" else 0,
            "n_train_rows_available": int(len(train_idx)), "n_train_repeated_rows": n_repeated,
        },
        "classifiers": {},
    }
    from stratonet.evaluate.plate_effects import plate_effect

    result["plate_effect"] = plate_effect(data, feats, provenance)
    fitted = {}
    predictions = {}
    probabilities: dict[str, np.ndarray] = {}
    for clf_name in track(classifiers, description="classifiers (held-out test)", total=len(classifiers)):
        model = make_classifier(clf_name, seed, n_jobs, rf_trees, impute).fit(X[fit_idx], y[fit_idx])
        pred = model.predict(X[test_idx])
        pred_bal = model.predict(X[bal_test_idx])
        scores = classification_metrics(y[test_idx], pred, classes)
        scores["balanced_test"] = classification_metrics(y[bal_test_idx], pred_bal, classes)
        result["classifiers"][clf_name] = scores
        fitted[clf_name] = model
        predictions[clf_name] = pred
        if hasattr(model, "predict_proba"):  # SVC without probability=True has none
            probabilities[clf_name] = model.predict_proba(X[test_idx]).max(axis=1)

    fold_rows = []
    if cv and cv > 1:
        folds = list(kfold_indices(y, cv, groups, seed))
        per_clf: dict[str, list] = {c: [] for c in classifiers}
        oof = {c: np.empty(len(y), dtype=y.dtype) for c in classifiers}  # out-of-fold predictions
        in_test = np.zeros(len(y), bool)
        folds_lacking = []
        for k, (tr, te) in enumerate(track(folds, description=f"{cv}-fold CV", total=len(folds))):
            sample = balanced_sample(y, tr, n_train, seed + 1 + k)
            absent = sorted(set(classes) - set(y[te]))
            if absent:
                folds_lacking.append({"fold": k, "classes_absent_from_test": absent})
            in_test[te] = True
            for clf_name in classifiers:
                model = make_classifier(clf_name, seed, n_jobs, rf_trees, impute).fit(X[sample], y[sample])
                pred = model.predict(X[te])
                oof[clf_name][te] = pred
                # Macro averages over the classes this fold has (in truth or prediction): a class absent from
                # the fold has no F1, and scoring it 0 would drag the fold mean down.
                m = classification_metrics(y[te], pred, sorted(set(y[te]) | set(pred)))
                per_clf[clf_name].append(m)
                fold_rows.append({"classifier": clf_name, "fold": k, **m})
        if folds_lacking:
            log.warning("%d of %d CV folds lack a class in their test part (e.g. fold %d: %s); compare the "
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

    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for clf_name in classifiers:
            _write_confusion(out, clf_name, y[test_idx], predictions[clf_name], classes, name)
            report_table(y[test_idx], predictions[clf_name], classes).to_csv(
                out / f"classification_report_{clf_name}.csv", index=False)
            _write_predictions(out, clf_name, data.iloc[test_idx], y[test_idx], predictions[clf_name],
                               probabilities.get(clf_name))
        if fold_rows:
            pd.DataFrame(fold_rows).to_csv(out / "cv_folds.csv", index=False)
        rf = fitted.get("rf") or make_classifier("rf", seed, n_jobs, rf_trees, impute).fit(X[fit_idx], y[fit_idx])
        imp, perm = importances(rf, X[test_idx], y[test_idx], feats, permutation_features,
                                permutation_repeats, seed, n_jobs)
        imp.to_csv(out / "importance_rf_impurity.csv", index=False)
        perm.to_csv(out / "importance_permutation.csv", index=False)
        from stratonet.core.runinfo import write_json

        write_json(result, out / "metrics.json")
    return result


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
