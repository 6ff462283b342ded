"""Gather everything a run folder holds (evaluation, training, manifests, configs, provenance) into plain tables.

Every reader tolerates absent parts: a missing part gives an empty result, and the report then says "not run".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stratonet.core.errors import InputFileError

METRIC_KEYS = ["accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1"]


@dataclass
class RunData:
    """What a run folder holds, keyed by feature set (or model / training name)."""

    run: Path
    classify: dict[str, dict] = field(default_factory=dict)
    retrieval: dict[str, dict] = field(default_factory=dict)
    embed: dict[str, dict] = field(default_factory=dict)
    compare: dict[str, dict] = field(default_factory=dict)
    taps: dict[str, dict] = field(default_factory=dict)
    training: dict[str, dict] = field(default_factory=dict)
    manifests: dict[str, dict] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)
    table_provenance: dict[str, dict] = field(default_factory=dict)
    table_shapes: dict[str, dict] = field(default_factory=dict)  # rows, features, plates per feature/profile table
    dirs: dict[str, dict[str, Path]] = field(default_factory=dict)  # kind -> name -> folder with its files


def read_json(path: Path) -> dict:
    """A JSON file as a dict; one-line error naming the file when corrupt."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(str(path), f"cannot read JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputFileError(str(path), "expected a JSON object")
    return data


def _subdirs_with(parent: Path, filename: str) -> dict[str, Path]:
    if not parent.is_dir():
        return {}
    return {d.name: d for d in sorted(parent.iterdir()) if d.is_dir() and (d / filename).exists()}


def collect_run(run: str | Path, exclude: Path | None = None) -> RunData:
    """Read a run folder laid out per the output contract.

    Parameters
    ----------
    run : path
        Run folder (``<run>/evaluate/<kind>/<set>/``, ``<run>/train/<name>/``, manifests and configs anywhere).
    exclude : path, optional
        A folder to ignore (the report's own output folder).
    """
    root = Path(run)
    if not root.is_dir():
        raise InputFileError(str(root), "run folder not found")
    data = RunData(run=root)
    ev = root / "evaluate"
    for kind in ("classify", "retrieval", "embed", "compare", "taps"):
        dirs = _subdirs_with(ev / kind, "metrics.json")
        if kind in ("embed", "compare", "taps"):  # these also count without metrics.json
            marker = {"embed": "pca_variance.csv", "compare": "correlation.csv", "taps": "tap_selection.csv"}[kind]
            dirs.update({k: v for k, v in _subdirs_with(ev / kind, marker).items() if k not in dirs})
        data.dirs[kind] = dirs
        target = getattr(data, kind)
        for name, d in dirs.items():
            target[name] = read_json(d / "metrics.json") if (d / "metrics.json").exists() else {}
    data.dirs["training"] = {k: v for k, v in _subdirs_with(root / "train", "metrics.json").items()}
    data.dirs["training"].update({k: v for k, v in _subdirs_with(root / "train", "epochs.csv").items()
                                  if k not in data.dirs["training"]})
    for name, d in data.dirs["training"].items():
        data.training[name] = read_json(d / "metrics.json") if (d / "metrics.json").exists() else {}

    def excluded(p: Path) -> bool:
        return exclude is not None and exclude.resolve() in p.resolve().parents

    for p in sorted(root.rglob("*.manifest.json")):
        if not excluded(p):
            data.manifests[str(p.relative_to(root))] = read_json(p)
    for p in sorted(root.rglob("*.config.yaml")):
        if not excluded(p):
            data.configs[str(p.relative_to(root))] = p.read_text(errors="replace")
    from stratonet.report.plates import find_feature_tables
    from stratonet.core.tables import read_provenance

    tables = sorted(find_feature_tables(root).values())  # a classical output folder: its site.parquet
    tables += sorted((root / "profiles").glob("*.parquet")) if (root / "profiles").is_dir() else []
    for p in tables:
        key = p.relative_to(root).as_posix()
        try:
            data.table_provenance[key] = read_provenance(p)
            data.table_shapes[key] = table_shape(p)
        except Exception as exc:  # a corrupt table must not stop the report; it is listed as unreadable
            data.table_provenance[key] = {"error": f"unreadable ({type(exc).__name__})"}
    return data


def table_shape(path: Path) -> dict:
    """Rows, feature columns, plates and wells of a Parquet table (reads only two metadata columns)."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    shape = {"rows": pf.metadata.num_rows, "features": sum(1 for n in names if not n.startswith("Metadata_"))}
    for col, key in (("Metadata_Plate", "plates"), ("Metadata_Well", "wells")):
        if col in names:
            shape[key] = int(pq.read_table(path, columns=[col]).column(0).to_pandas().nunique())
    return shape


# --- tables -------------------------------------------------------------------------------------------------

def classifier_table(classify: dict[str, dict]) -> pd.DataFrame:
    """Long table: feature_set, classifier, test metrics, balanced-test and CV mean/sd where given."""
    rows = []
    for fs, m in classify.items():
        for clf, r in (m.get("classifiers") or {}).items():
            row: dict[str, Any] = {"feature_set": m.get("feature_set", fs), "classifier": clf}
            for k in METRIC_KEYS:
                row[k] = r.get(k)
            bal = r.get("balanced_test") or {}
            row["balanced_accuracy"] = bal.get("accuracy")
            row["balanced_macro_f1"] = bal.get("macro_f1")
            for k in ("accuracy", "macro_f1"):
                cv = (r.get("cv") or {}).get(k) or {}
                row[f"cv_{k}_mean"] = cv.get("mean")
                row[f"cv_{k}_sd"] = cv.get("sd")
            rows.append(row)
    return pd.DataFrame(rows)


def retrieval_table(retrieval: dict[str, dict]) -> pd.DataFrame:
    """One row per feature set: mAP (activity, consistency), fraction retrieved, NSC and NSCB accuracy."""
    rows = []
    for fs, m in retrieval.items():
        act = m.get("map_activity") or {}
        con = m.get("map_consistency") or {}
        rows.append({
            "feature_set": m.get("feature_set", fs),
            "map_activity": act.get("mean_map"), "fraction_retrieved_activity": act.get("fraction_retrieved"),
            "map_consistency": con.get("mean_map"), "fraction_retrieved_consistency": con.get("fraction_retrieved"),
            "nsc_accuracy": m.get("nsc_accuracy"), "nscb_accuracy": m.get("nscb_accuracy"),
            "not computed": "; ".join(f"{k}: {v}" for k, v in (m.get("skipped") or {}).items()),
        })
    return pd.DataFrame(rows)


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = d
    return out


# manifest column -> accepted key names (last component of the flattened key), first match wins
RESOURCE_FIELDS = {
    "feature_set": ["feature_set"],
    "model": ["model", "architecture", "name"],
    "weights": ["weights"],
    "device": ["device"],
    "n_sites": ["n_sites", "sites_processed", "sites", "num_sites"],
    "wall_s": ["wall_s", "wall_time_s", "wall_seconds"],
    "channel_images_per_s": ["channel_images_per_s"],
    "sites_per_s": ["sites_per_s"],
    "core_s_per_site": ["core_s_per_site"],
    "cpu_pct_avg": ["cpu_pct_avg"], "cpu_pct_max": ["cpu_pct_max"],
    "machine_cpu_pct_avg": ["machine_cpu_pct_avg"],
    "mem_pct_avg": ["mem_pct_avg"], "mem_pct_max": ["mem_pct_max"],
    "rss_gb_max": ["rss_gb_max"],
    "errors": ["n_errors", "errors"],
}


def resources_table(manifests: dict[str, dict]) -> pd.DataFrame:
    """Timing and resources from extract manifests (thesis Appendix C style), one row per manifest."""
    rows, seen = [], []
    for rel, m in manifests.items():
        if m in seen:  # the same manifest copied to a second place
            continue
        seen.append(m)
        flat = _flatten(m)
        row: dict[str, Any] = {"manifest": rel}
        for col, aliases in RESOURCE_FIELDS.items():
            for alias in aliases:
                hits = [v for k, v in flat.items() if k.split(".")[-1] == alias and not isinstance(v, list)]
                if hits:
                    row[col] = hits[0]
                    break
            if col == "errors" and isinstance(m.get("errors"), list):
                row[col] = len(m["errors"])
        rows.append(row)
    return pd.DataFrame(rows).dropna(axis=1, how="all")


def training_table(training: dict[str, dict]) -> pd.DataFrame:
    """One row per training run: model, accuracy, macro F1, majority baseline, collapsed."""
    rows = []
    for name, m in training.items():
        val = m.get("val_class_counts") or {}
        rows.append({"name": name, "model": m.get("model"), "accuracy": m.get("accuracy"),
                     "macro_f1": m.get("macro_f1"), "n_val": m.get("n_val"),
                     "classes in val": (f"{sum(1 for v in val.values() if v)} of {len(val)}" if val else None),
                     "majority_baseline": m.get("majority_baseline"),
                     "collapsed": m.get("collapsed"), "weights": (m.get("provenance") or {}).get("weights"),
                     "self-supervised": ssl_summary(m)})
    tab = pd.DataFrame(rows)
    if tab.empty:
        return tab
    ssl = tab["self-supervised"].notna()
    if not ssl.any():  # classifiers only: no self-supervised column
        return tab.drop(columns=["self-supervised"])
    if ssl.all():  # self-supervised only: no label, so no accuracy columns
        return tab[["name", "model", "self-supervised"]]
    return tab


def ssl_summary(m: dict) -> str | None:
    """``train ssl`` runs (no labels, so no accuracy): steps, time and the loss from first to last step."""
    if "steps_done" not in m or "loss_last" not in m:
        return None
    first, last = m.get("loss_first"), m.get("loss_last")
    loss = f"; loss {first:.2f} -> {last:.2f}" if first is not None and last is not None else ""
    return f"{m['steps_done']} steps, {m.get('seconds', 0):.0f} s{loss}; no labels read"


def untrained_labels(data: RunData) -> list[str]:
    """Every 'untrained (seed N)' label found in provenances, metrics and manifests, with where it was found."""
    found: dict[str, str] = {}

    def scan(obj: Any, where: str) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(v, str) and v.startswith("untrained") and k in ("weights", "label", "status"):
                    found.setdefault(f"{where}: {v}", v)
                else:
                    scan(v, where)
        elif isinstance(obj, list):
            for v in obj:
                scan(v, where)

    for kind in ("classify", "retrieval", "embed", "compare", "taps", "training"):
        for name, m in getattr(data, kind).items():
            scan(m, f"{kind}/{name}")
    for rel, m in data.manifests.items():
        scan(m, rel)
    for rel, prov in data.table_provenance.items():
        scan(prov, rel)
    return sorted(found)
