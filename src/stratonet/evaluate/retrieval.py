"""Retrieval metrics: mAP with copairs (phenotypic activity, consistency) and NSC / NSCB 1-NN accuracy.

- Activity: each treatment's replicates should retrieve each other before the negative controls (replicate-level
  profiles, e.g. per well).
- Consistency: treatment-level profiles (median per compound and concentration, controls excluded) of the same
  class (MoA, target) should retrieve each other before other classes; same-compound pairs do not count.
- NSC: 1-nearest-neighbour class of each treatment profile, never matching a profile of the same compound; NSCB
  also never matches a treatment imaged in the same batch (Ljosa et al. 2013; Ando et al. 2017).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stratonet.core.errors import ConfigError, StratoNetError
from stratonet.evaluate.config import RetrievalConfig
from stratonet.evaluate.blockwise import METRICS, average_precision_blockwise, nearest_allowed_blockwise
from stratonet.profile.aggregate import aggregate
from stratonet.profile.controls import compound_column, negcon_mask, treatment_columns
from stratonet.core.progress import get_logger
from stratonet.core.tables import feature_columns

def similarity_matrix(X: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """All-pairs similarity (float32): cosine, Pearson correlation, or 1 / (1 + Euclidean distance).

    The whole ``n x n`` matrix at once; the retrieval metrics use the blockwise form
    (:mod:`stratonet.evaluate.blockwise`), and the tests use this one as its independent reference.
    """
    if metric not in METRICS:
        raise ConfigError(f"unknown similarity '{metric}' (use {', '.join(METRICS)})")
    X = np.asarray(X, dtype=np.float32)
    if metric == "euclidean":
        sq = np.einsum("ij,ij->i", X, X)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * (X @ X.T), 0)
        return (1.0 / (1.0 + np.sqrt(d2))).astype(np.float32)
    if metric == "correlation":
        X = X - X.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    Xn = X / norms
    return Xn @ Xn.T


def treatment_key(df: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.Series:
    """One string per row naming its treatment (compound and concentration joined with '@')."""
    cols = list(columns) if columns else treatment_columns(df)
    return df[cols].astype(str).agg("@".join, axis=1)


def _copairs_ap(meta: pd.DataFrame, X: np.ndarray, pos_sameby, pos_diffby, neg_sameby, neg_diffby,
                metric: str, batch_size: int = 20000) -> pd.DataFrame:
    """copairs' own average precision (pairs enumerated in memory); kept as the reference the blockwise AP is
    tested against."""
    from copairs.map import average_precision

    return average_precision(meta, X, pos_sameby, pos_diffby, neg_sameby, neg_diffby,
                             batch_size=batch_size, distance=metric, progress_bar=False)


def _codes(values) -> np.ndarray:
    return pd.factorize(pd.Series(values).astype(str))[0]


def map_scores(
    df: pd.DataFrame,
    features: Sequence[str] | None = None,
    kind: str = "activity",
    label: str = "Metadata_moa",
    treatment: Sequence[str] | None = None,
    metric: str = "cosine",
    null_size: int = 10000,
    threshold: float = 0.05,
    seed: int = 0,
    block_rows: int = 512,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Average precision per profile and mAP per group with copairs, p-values and BH correction.

    Parameters
    ----------
    df : DataFrame
        ``activity``: replicate-level profiles (e.g. per well) including the negative controls.
        ``consistency``: any level; profiles are first aggregated to treatment level (median), controls dropped.
    features : list of str, optional
    kind : {"activity", "consistency"}
    label : str
        Class column for consistency (MoA, target).
    treatment : list of str, optional
        Columns naming a treatment (default: compound + concentration, see :func:`treatment_columns`).
    metric : {"cosine", "correlation", "euclidean"}
    null_size : int
        Size of copairs' null distribution per configuration.
    threshold : float
        Significance level for ``below_corrected_p`` (BH-corrected).
    seed : int
    block_rows : int
        Query profiles per block of the AP computation; memory is about ``3 x block_rows x n`` bytes beyond the
        profiles, so 50,000 profiles fit in well under 1 GB (see :mod:`stratonet.evaluate.blockwise`).

    Returns
    -------
    ap, map : DataFrame
        Per-profile AP (copairs' definition, computed blockwise) and per-group mAP with ``p_value``, ``corrected_p_value``
        and ``below_corrected_p`` (copairs ``mean_average_precision``).
    """
    from copairs.map import mean_average_precision

    feats = feature_columns(df, features)
    tcols = list(treatment) if treatment else treatment_columns(df)
    if kind == "activity":
        data = df.reset_index(drop=True)
        meta = pd.DataFrame({"Metadata_treatment": treatment_key(data, tcols)})
        neg = negcon_mask(data)
        # copairs' reference-index idiom: controls get unique indices, so they pair with treatments only as negatives.
        meta["Metadata_reference_index"] = np.where(neg, np.arange(len(data)), -1)
        pos_sameby, pos_diffby = ["Metadata_treatment", "Metadata_reference_index"], []
        neg_sameby, neg_diffby = [], ["Metadata_treatment", "Metadata_reference_index"]
        group = ["Metadata_treatment"]
        for c in tcols:
            meta[c] = data[c].to_numpy()
    elif kind == "consistency":
        if label not in df.columns:
            raise StratoNetError(f"label column '{label}' not in profiles")
        data = treatment_level(df, feats, tcols)
        data = data[data[label].notna()].reset_index(drop=True)
        comp = compound_column(data) or tcols[0]
        meta = pd.DataFrame({label: data[label].astype(str).to_numpy(), "Metadata_compound_key": data[comp].astype(str)})
        pos_sameby, pos_diffby = [label], ["Metadata_compound_key"]
        neg_sameby, neg_diffby = [], [label]
        group = [label]
    else:
        raise ConfigError(f"unknown mAP kind '{kind}' (use activity or consistency)")
    X = data[feats].to_numpy(dtype=np.float32)
    if np.isnan(X).any():
        raise StratoNetError("features contain missing values: use --impute median, or drop such columns with "
                             "'stratonet profile --na-cutoff 0'")
    need = "controls" if kind == "activity" else "two compounds per class"
    if kind == "activity":
        pos_code = np.where(neg, -1, _codes(meta["Metadata_treatment"]))
        scores = average_precision_blockwise(X, pos_code, np.arange(len(X)), neg.astype(np.int64), neg, metric,
                                             block_rows)
    else:
        labels = _codes(meta[label])
        scores = average_precision_blockwise(X, labels, _codes(meta["Metadata_compound_key"]), labels,
                                             np.ones(len(X), dtype=bool), metric, block_rows)
    if (scores["n_total_pairs"] == scores["n_pos_pairs"]).all():
        raise StratoNetError(f"mAP {kind}: Unable to find negative pairs. (need replicates and {need})")
    ap = pd.concat([meta.reset_index(drop=True), scores], axis=1)
    ap = ap[ap["n_pos_pairs"] > 0].reset_index(drop=True)
    if ap.empty:
        raise StratoNetError(f"mAP {kind}: no profile has a positive pair (need replicates and {need})")
    m = mean_average_precision(ap, group, null_size=null_size, threshold=threshold, seed=seed, progress_bar=False)
    m = m.drop(columns=["indices"], errors="ignore")
    if kind == "activity":
        first = meta.drop_duplicates("Metadata_treatment").set_index("Metadata_treatment")[tcols]
        m = m.join(first, on="Metadata_treatment")
    return ap, m


def treatment_level(df: pd.DataFrame, features: Sequence[str] | None = None,
                    treatment: Sequence[str] | None = None, operation: str = "median",
                    batch: str | None = None) -> pd.DataFrame:
    """Treatment profiles: median per treatment (compound, concentration) with negative controls dropped.

    With ``batch``, ``Metadata_batches`` lists the batches ('|'-joined) the treatment's replicates came from.
    """
    feats = feature_columns(df, features)
    tcols = list(treatment) if treatment else treatment_columns(df)
    data = df[~negcon_mask(df, required=False)]
    if data.empty:
        raise StratoNetError("no treated profiles (every row is a negative control)")
    out = aggregate(data, tcols, feats, operation)
    if batch:
        if batch not in df.columns:
            raise StratoNetError(f"batch column '{batch}' not in profiles")
        b = data.groupby(tcols, sort=True, dropna=False, observed=True)[batch].agg(
            lambda s: "|".join(sorted(set(s.astype(str)))))
        out = out.join(b.rename("Metadata_batches"), on=tcols)
    return out


def nsc_predictions(
    df: pd.DataFrame,
    features: Sequence[str] | None = None,
    label: str = "Metadata_moa",
    treatment: Sequence[str] | None = None,
    batch: str | None = None,
    metric: str = "cosine",
    aggregate_first: bool = True,
) -> pd.DataFrame:
    """1-NN class predictions for every treatment profile, not-same-compound (and not-same-batch).

    Parameters
    ----------
    df : DataFrame
        Profiles at any level; with ``aggregate_first`` they are reduced to treatment level (median per compound
        and concentration) and negative controls are dropped.
    label : str
        Class column (MoA).
    treatment : list of str, optional
        Treatment columns; the first is the compound.
    batch : str, optional
        Batch column; when given, the ``nscb_*`` columns are filled too.
    metric : {"cosine", "correlation", "euclidean"}

    Returns
    -------
    DataFrame
        One row per treatment: its metadata, ``nsc_neighbor`` (index of the match), ``nsc_prediction``,
        ``nsc_correct``, and with ``batch`` the ``nscb_*`` equivalents. A query whose class has no eligible
        candidate (e.g. the only compound of its MoA, or a MoA confined to one batch for NSCB) is marked
        ``*_evaluable = False`` and left out of the accuracy, as in the literature.
    """
    feats = feature_columns(df, features)
    tcols = list(treatment) if treatment else treatment_columns(df)
    if label not in df.columns:
        raise StratoNetError(f"label column '{label}' not in profiles")
    if aggregate_first:
        prof = treatment_level(df, feats, tcols, batch=batch)
    else:
        prof = df[~negcon_mask(df, required=False)].copy()
        if batch:
            prof["Metadata_batches"] = prof[batch].astype(str)
    prof = prof[prof[label].notna()].reset_index(drop=True)
    if len(prof) < 2:
        raise StratoNetError("NSC needs at least two treatment profiles")
    X = prof[feats].to_numpy(dtype=np.float32)
    if np.isnan(X).any():
        raise StratoNetError("features contain missing values: use --impute median, or drop such columns with "
                             "'stratonet profile --na-cutoff 0'")
    compound = _codes(prof[tcols[0]])
    y = prof[label].astype(str).to_numpy()
    out = prof[[c for c in prof.columns if c.startswith("Metadata_")]].copy()

    def not_same_compound(rows: slice) -> np.ndarray:
        return compound[rows, None] != compound[None, :]

    _predict(out, "nsc", X, not_same_compound, y, metric)
    if batch:
        sets = [set(s.split("|")) for s in prof["Metadata_batches"]]
        codes = {b: i for i, b in enumerate(sorted(set().union(*sets)))}
        member = np.zeros((len(prof), len(codes)), dtype=np.float32)
        for i, s in enumerate(sets):
            member[i, [codes[b] for b in s]] = 1

        def not_same_compound_or_batch(rows: slice) -> np.ndarray:
            return not_same_compound(rows) & ((member[rows] @ member.T) == 0)

        _predict(out, "nscb", X, not_same_compound_or_batch, y, metric)
    return out


def _predict(out: pd.DataFrame, prefix: str, X: np.ndarray, allowed_fn, y: np.ndarray, metric: str) -> None:
    nn, sim, same_class = nearest_allowed_blockwise(X, allowed_fn, y, metric)
    has = nn >= 0
    pred = np.where(has, y[np.maximum(nn, 0)], None)
    out[f"{prefix}_neighbor"] = nn
    out[f"{prefix}_prediction"] = pred
    out[f"{prefix}_similarity"] = sim
    out[f"{prefix}_correct"] = has & (pred == y)
    out[f"{prefix}_evaluable"] = same_class & has


def nsc_accuracy(df: pd.DataFrame, features: Sequence[str] | None = None, batch: str | None = None,
                 **options) -> float:
    """NSC 1-NN accuracy (or NSCB when ``batch`` is given) over the evaluable treatment profiles.

    ``options`` (``label``, ``treatment``, ``metric``, ``aggregate_first``) are those of :func:`nsc_predictions`.
    """
    pred = nsc_predictions(df, features, batch=batch, **options)
    prefix = "nscb" if batch else "nsc"
    ok = pred[f"{prefix}_evaluable"]
    if not ok.any():
        raise StratoNetError(f"{prefix.upper()}: no treatment has an eligible neighbour of its own class")
    return float(pred.loc[ok, f"{prefix}_correct"].mean())


@dataclass
class RetrievalResult:
    """The mAP and NSC figures of :func:`evaluate_retrieval` (``metrics``, saved as ``metrics.json``) and the
    ``tables`` behind them, a dict of DataFrames: ``map_activity``, ``ap_activity``, ``map_consistency``,
    ``ap_consistency``, ``nsc_predictions`` (those computed), each saved as ``<key>.csv`` by :func:`write_retrieval`.
    """

    metrics: dict
    tables: dict = field(default_factory=dict)


def default_batch_column(df: pd.DataFrame) -> str | None:
    """``Metadata_Batch`` when present, else ``Metadata_Plate``, else None."""
    for c in ("Metadata_Batch", "Metadata_Plate"):
        if c in df.columns:
            return c
    return None


def evaluate_retrieval(df: pd.DataFrame, cfg: RetrievalConfig = RetrievalConfig(), name: str = "features",
                       provenance: dict | None = None) -> RetrievalResult:
    """mAP activity and consistency, NSC and NSCB; :func:`write_retrieval` saves the output-contract files.

    Parameters
    ----------
    df : DataFrame
        Replicate-level profiles (e.g. per well) with negative controls, a treatment column and ``cfg.label``.
    cfg : RetrievalConfig
        Label, treatment and batch columns, similarity and copairs settings.
    name : str
        Feature-set name stored as ``feature_set``.
    provenance : dict, optional
        Copied into the metrics.

    Returns
    -------
    RetrievalResult
        ``metrics``: ``{"feature_set", "provenance", "map_activity": {"mean_map", "fraction_retrieved", ...},
        "map_consistency": {...}, "nsc_accuracy", "nscb_accuracy", ...}``; a part that cannot be computed
        (e.g. no replicates) holds ``None`` and its reason under ``"skipped"``. ``tables``: the per-group and
        per-profile tables.
    """
    label, metric, null_size, threshold, seed = cfg.label, cfg.metric, cfg.null_size, cfg.threshold, cfg.seed
    feats = feature_columns(df, cfg.features)
    tcols = list(cfg.treatment) if cfg.treatment else treatment_columns(df)
    batch = cfg.batch or default_batch_column(df)
    result: dict = {"feature_set": name, "provenance": provenance or {}, "label": label, "metric": metric,
                    "treatment": tcols, "batch": batch, "n_profiles": int(len(df)), "n_features": len(feats),
                    "null_size": null_size, "threshold": threshold, "skipped": {}}
    from stratonet.evaluate.plate_effects import plate_effect

    result["plate_effect"] = plate_effect(df, feats, provenance)
    tables: dict[str, pd.DataFrame] = {}
    for kind in ("activity", "consistency"):
        if kind == "consistency" and label not in df.columns:
            result[f"map_{kind}"] = None
            result["skipped"][kind] = f"no '{label}' column (pass --label COLUMN)"
            continue
        try:
            ap, m = map_scores(df, feats, kind, label, tcols, metric, null_size, threshold, seed)
        except StratoNetError as exc:
            get_logger().warning("mAP %s skipped: %s", kind, exc)
            result[f"map_{kind}"] = None
            result["skipped"][kind] = str(exc)
            continue
        tables[f"map_{kind}"] = m
        tables[f"ap_{kind}"] = ap
        result[f"map_{kind}"] = {
            "mean_map": float(m["mean_average_precision"].mean()),
            "fraction_retrieved": float(m["below_corrected_p"].mean()),
            "n_groups": int(len(m)),
            "n_retrieved": int(m["below_corrected_p"].sum()),
        }
    if label in df.columns:
        tables["nsc_predictions"] = _nsc_summary(nsc_predictions(df, feats, label, tcols, batch, metric), result)
    else:
        result["nsc_accuracy"] = result["nscb_accuracy"] = None
        result["skipped"]["nsc"] = f"no '{label}' column (pass --label COLUMN)"
    return RetrievalResult(result, tables)


def _nsc_summary(pred: pd.DataFrame, result: dict) -> pd.DataFrame:
    """NSC and NSCB accuracy over the evaluable treatments into ``result``; returns the predictions."""
    for prefix in ("nsc", "nscb"):
        if f"{prefix}_evaluable" not in pred:
            result[f"{prefix}_accuracy"] = None
            continue
        ok = pred[f"{prefix}_evaluable"]
        result[f"{prefix}_accuracy"] = float(pred.loc[ok, f"{prefix}_correct"].mean()) if ok.any() else None
        result[f"{prefix}_n"] = int(ok.sum())
        result[f"{prefix}_not_evaluable"] = int((~ok).sum())
    return pred


def write_retrieval(res: RetrievalResult, out_dir: str | Path) -> Path:
    """Save a :class:`RetrievalResult` in ``out_dir`` (the CLI uses ``<run>/evaluate/retrieval/<name>``):
    ``metrics.json``, ``map_activity.csv``, ``map_consistency.csv``, ``nsc_predictions.csv``, ``ap_activity.csv``,
    ``ap_consistency.csv`` (those computed). Returns the folder."""
    from stratonet.core.runinfo import write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for key, table in res.tables.items():
        table.to_csv(out / f"{key}.csv", index=False)
    write_json(res.metrics, out / "metrics.json")
    return out
