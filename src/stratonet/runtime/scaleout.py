"""Splitting an extraction into shards, running them on Ray or as array jobs, and merging them back.

The unit of work is a well (all its sites and crops), so that site, well and per-cell tables of one well are always
written by one shard. Shard ``i`` of ``n`` takes the wells whose position, in order of first appearance in the
index, satisfies ``position * n // n_wells == i``: contiguous blocks, so that the merged table keeps the index's
order. Each shard is an ordinary, resumable run of the local extractor into its own folder::

    <out>.shards/shard-00002-of-00008/<out name>

and :func:`merge_shards` joins them (Parquet tables concatenated in shard order, schema metadata kept, errors
tables concatenated, manifests summarised) after checking that every shard finished. With ``--engine ray`` the
shards are Ray tasks, retried when a worker dies; a retried shard resumes from what its killed attempt flushed, so no
row is lost or written twice. A task asks for a whole node's CPUs (or one GPU and its share of the CPUs), so each
shard runs the local engine exactly as a local run would on that node, with the same intra-op thread count: on CPU
the merged table is bit-identical to a local run's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import pandas as pd

from stratonet.core.errors import ConfigError, StratoNetError

UNIT_KEYS = ["Metadata_Plate", "Metadata_Well"]
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_SHARD_DIR = re.compile(r"^shard-(\d{5})-of-(\d{5})$")
DONE = "_SHARD_DONE.json"
#: Set while a shard runs: a step that would estimate something from "the whole index" sees only the shard.
IN_SHARD = "STRATONET_SHARD"


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> ``(2, 8)``; shards count from 0 (as ``$SLURM_ARRAY_TASK_ID`` with ``--array=0-7``)."""
    m = _SHARD.match(str(text))
    if not m:
        raise ConfigError(f"--shard {text!r}: expected I/N, e.g. 0/8")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {text}: I must be in 0..N-1 and N >= 1")
    return i, n


def well_units(index: pd.DataFrame) -> list[tuple]:
    """Wells (plate, well) in order of first appearance in the index."""
    missing = [k for k in UNIT_KEYS if k not in index.columns]
    if missing:
        raise StratoNetError(f"cannot shard: index lacks column(s) {missing}")
    keys = index[UNIT_KEYS].astype(str)
    return list(dict.fromkeys(map(tuple, keys.itertuples(index=False, name=None))))


def select_shard(index: pd.DataFrame, i: int, n: int) -> pd.DataFrame:
    """Rows of shard ``i`` of ``n`` (whole wells, index order kept)."""
    units = well_units(index)
    mine = {u for pos, u in enumerate(units) if pos * n // len(units) == i} if units else set()
    keys = index[UNIT_KEYS].astype(str)
    mask = [tuple(k) in mine for k in keys.itertuples(index=False, name=None)]
    return index[mask]


def shard_root(out: str | Path) -> Path:
    out = Path(out)
    return out.parent / f"{out.name}.shards"


def shard_output(out: str | Path, i: int, n: int) -> Path:
    """Where shard ``i`` of ``n`` writes what an unsharded run would write at ``out``."""
    return shard_root(out) / f"shard-{i:05d}-of-{n:05d}" / Path(out).name


def run_shard(run: Callable[[pd.DataFrame, Path], dict], index: pd.DataFrame, out: str | Path, i: int, n: int) -> dict:
    """Run the local extractor on shard ``i`` of ``n`` and mark the shard finished."""
    dest = shard_output(out, i, n)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sub = select_shard(index, i, n)
    if sub.empty:
        manifest = {"empty_shard": True, "wells": 0}
    else:
        previous = os.environ.get(IN_SHARD)
        os.environ[IN_SHARD] = f"{i}/{n}"  # lets steps that must see the whole index refuse (plate scaling)
        try:
            manifest = run(sub.reset_index(drop=True), dest)
        finally:
            if previous is None:
                os.environ.pop(IN_SHARD, None)
            else:
                os.environ[IN_SHARD] = previous
    done = {"shard": i, "of": n, "rows": int(len(sub)), "wells": len(well_units(sub)) if len(sub) else 0,
            "manifest": manifest}
    tmp = dest.parent / (DONE + ".tmp")
    tmp.write_text(json.dumps(done, default=str))
    tmp.replace(dest.parent / DONE)  # written last: a shard without it did not finish
    return done


def shard_status(out: str | Path) -> tuple[int | None, list[int], list[int]]:
    """``(n, finished, missing)`` for the shards under ``<out>.shards``."""
    root = shard_root(out)
    if not root.is_dir():
        return None, [], []
    found: dict[int, int] = {}
    counts = set()
    for d in root.iterdir():
        m = _SHARD_DIR.match(d.name)
        if m and d.is_dir():
            counts.add(int(m.group(2)))
            if (d / DONE).exists():
                found[int(m.group(1))] = int(m.group(2))
    if len(counts) > 1:
        raise StratoNetError(f"{root}: shards of different splits ({sorted(counts)}); remove the stale ones")
    if not counts:
        return None, [], []
    n = counts.pop()
    finished = sorted(found)
    return n, finished, [i for i in range(n) if i not in found]


def merge_shards(out: str | Path) -> dict:
    """Join finished shards into ``out`` and return a summary manifest; a missing shard is an error naming it.

    Parameters
    ----------
    out : path
        The output an unsharded run would have written (a Parquet file, or a folder for classical features).

    Returns
    -------
    dict
        ``{"shards": n, "merged": [...files], "shard_manifests": [...], <int fields summed>, ...}``; also written
        next to the output as ``<stem>.manifest.json`` (files) or ``<out>/manifest.json`` (folders).
    """
    out = Path(out)
    n, finished, missing = shard_status(out)
    if n is None:
        raise StratoNetError(f"no shards to merge under {shard_root(out)}")
    if missing:
        names = ", ".join(f"{i}/{n} ({shard_output(out, i, n).parent})" for i in missing[:5])
        raise StratoNetError(f"{len(missing)} of {n} shard(s) missing or unfinished: {names}"
                             f"{' ...' if len(missing) > 5 else ''}; run them (--shard I/{n}) and merge again")
    done = [json.loads((shard_output(out, i, n).parent / DONE).read_text()) for i in range(n)]
    outputs = [shard_output(out, i, n) for i in range(n) if not done[i]["manifest"].get("empty_shard")]
    if not outputs:
        raise StratoNetError(f"every shard under {shard_root(out)} was empty: nothing to merge")
    merged = _merge_tree(outputs, out)
    summary = _summarise([d["manifest"] for d in done if not d["manifest"].get("empty_shard")])
    summary.update({"output": str(out), "shards": n, "merged_files": merged,
                    "rows_per_shard": [d["rows"] for d in done], "wells_per_shard": [d["wells"] for d in done]})
    mpath = (out / "manifest.json") if out.is_dir() else out.with_name(out.name.removesuffix(".parquet")
                                                                        + ".manifest.json")
    from stratonet.core.runinfo import write_json

    write_json(summary, mpath)
    return summary


def _merge_tree(sources: list[Path], out: Path) -> list[str]:
    """Concatenate the Parquet tables (and CSV error tables) found at the same relative path in every source."""
    if sources[0].is_dir():
        rels = sorted({p.relative_to(s) for s in sources for p in s.rglob("*") if p.is_file()})
        out.mkdir(parents=True, exist_ok=True)
        merged = []
        for rel in rels:
            files = [s / rel for s in sources if (s / rel).exists()]
            if _merge_file(files, out / rel):
                merged.append(str(rel))
        return merged
    _merge_file(sources, out)
    merged = [out.name]
    for sibling in sorted({p.name for s in sources for p in s.parent.iterdir()
                           if p.is_file() and p.name != s.name and p.name != DONE}):
        files = [s.parent / sibling for s in sources if (s.parent / sibling).exists()]
        if _merge_file(files, out.parent / sibling):
            merged.append(sibling)
    return merged


def _merge_file(files: list[Path], dest: Path) -> bool:
    """Parquet and CSV files are concatenated; other files (masks, logs) are copied; manifests are left to the
    summary. Returns whether ``dest`` was written."""
    import pyarrow.parquet as pq

    from stratonet.runtime.resumable import _merge

    name = dest.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".parquet"):  # shards hold disjoint wells: no key to deduplicate
        _merge(files, dest, key_columns=(), metadata=pq.read_schema(files[0]).metadata)
        return True
    if name.endswith(".json") or name.endswith(".yaml") or name == "stratonet.log":
        return False
    if name.endswith(".csv"):
        pd.concat([pd.read_csv(f) for f in files], ignore_index=True).to_csv(dest, index=False)
        return True
    for f in files:  # e.g. masks: one file per site, present in one shard only
        shutil.copy2(f, dest)
    return True


def _summarise(manifests: list[dict]) -> dict:
    """Integers summed, floats averaged over shards, lists concatenated (deduplicated), the rest from shard 0."""
    out: dict = {"shard_manifests": manifests}
    first = manifests[0]
    for key, value in first.items():
        vals = [m.get(key) for m in manifests if key in m]
        if isinstance(value, bool) or value is None:
            out[key] = value
        elif isinstance(value, int):
            out[key] = sum(int(v or 0) for v in vals)
        elif isinstance(value, float):
            out[key] = sum(float(v) for v in vals) / len(vals)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = list(dict.fromkeys(x for v in vals for x in (v or [])))
        else:
            out[key] = value
    return out


#: Fewest wells per default Ray shard: each task pays for a worker process and a model load once.
MIN_WELLS_PER_SHARD = 8


def default_ray_shards(index: pd.DataFrame, slots: int) -> int:
    """Four tasks per task slot of the cluster (for balance), with at least ``MIN_WELLS_PER_SHARD`` wells each."""
    wells = len(well_units(index))
    return max(1, min(-(-wells // MIN_WELLS_PER_SHARD), 4 * max(1, slots)))


def task_resources(nodes: list[dict]) -> tuple[float, float, int]:
    """``(cpus, gpus, slots)`` per task: a whole (smallest) node's CPUs, or one GPU and its share of the CPUs."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    if not alive:
        raise StratoNetError("the Ray cluster has no live node")
    node_cpus = min(r.get("CPU", 1.0) for r in alive)
    gpus = [r.get("GPU", 0.0) for r in alive]
    if all(g >= 1 for g in gpus):
        per_gpu = max(1.0, node_cpus / max(gpus))
        return per_gpu, 1.0, int(sum(gpus))
    return node_cpus, 0.0, len(alive)


@contextmanager
def ray_session(address: str | None = None):
    """Connect to ``address`` (default ``$RAY_ADDRESS``, else a new local cluster) unless Ray is already
    initialised; yields the ``ray`` module and shuts down only a connection made here."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--engine ray needs Ray: install stratonet[ray], i.e. pip install 'stratonet[ray]'") from exc
    address = address or os.environ.get("RAY_ADDRESS") or None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True, configure_logging=False)
        except Exception as exc:  # connection errors come in many types
            raise StratoNetError(f"cannot connect to the Ray cluster at {address or 'a new local cluster'}: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def run_on_ray(run: Callable[[pd.DataFrame, Path], dict], index: pd.DataFrame, out: str | Path,
               address: str | None = None, shards: int | None = None, max_retries: int = 3) -> dict:
    """Run every shard as a Ray task (retried if its worker dies), then merge them into ``out``.

    Parameters
    ----------
    run : callable
        ``run(index_subset, dest) -> manifest``: the local extractor bound to its options.
    address : str, optional
        Ray cluster address (``ray://host:10001``, ``auto``); default ``$RAY_ADDRESS``, else a local cluster.
    shards : int, optional
        Number of tasks (default: four per task slot, at most one per well; see :func:`task_resources`).
    max_retries : int
        Retries of a task whose worker died.
    """
    with ray_session(address) as ray:
        cpus, gpus, slots = task_resources(ray.nodes())
        n = shards or default_ray_shards(index, slots)
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=max_retries)(run_shard)
        on_disk, finished, _ = shard_status(out)
        if on_disk is not None and on_disk != n:
            n = on_disk  # resume the split already on disk (its finished shards are the ones listed)
        refs = [task.remote(run, index, out, i, n) for i in range(n) if i not in finished]
        from stratonet.core.progress import track

        pending = list(refs)
        for _ in track(range(len(refs)), f"ray: {len(refs)} shard(s)", total=len(refs)):
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                if isinstance(cause, StratoNetError):
                    raise cause
                raise StratoNetError(f"a Ray task failed: {type(cause).__name__}: {cause}") from exc
        return merge_shards(out)
