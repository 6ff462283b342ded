"""How a run executes, whatever the extractor: :class:`RunSpec` (and :class:`RaySpec` for ``--engine ray``).

Built once by the CLI (or by the keyword form of :func:`stratonet.runtime.extract_deep`) and passed whole to the
engines; :func:`split_options` is the one place where the flat option names are sorted into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class RaySpec:
    """``--engine ray`` options: cluster ``address`` (default ``$RAY_ADDRESS``), ``shards`` (ray tasks),
    ``mode`` (data | tasks), model ``actors``, ``decode`` (auto | actor | tasks) and ``unit_size`` (sites per unit
    of work, Ray Data)."""

    address: str | None = None
    shards: int | None = None
    mode: str = "data"
    actors: int | None = None
    decode: str = "auto"
    unit_size: int | None = None


@dataclass(frozen=True)
class RunSpec:
    """How a run executes.

    Attributes
    ----------
    workers : int, optional
        Decode worker processes (deep; default: see :func:`stratonet.models.precision.default_threads_workers`).
    threads : int, optional
        Model intra-op threads (default: the cores the worker processes leave).
    decode_thread : bool, optional
        With no worker processes: decode ahead (True), in line (False) or chosen by load (None).
    rows_per_part : int
        Rows buffered before a part is flushed (bounds memory; the unit of resume).
    flush_seconds : float
        Also flush when the oldest buffered row is this old.
    overwrite : bool
        Discard existing output instead of resuming.
    progress : bool
        Show a progress bar.
    engine : {"local", "ray"}
    ray : RaySpec
    shard : str, optional
        ``I/N``: this run is one shard of an array job.
    """

    workers: int | None = None
    threads: int | None = None
    decode_thread: bool | None = None
    rows_per_part: int = 256
    flush_seconds: float = 60.0
    overwrite: bool = False
    progress: bool = True
    engine: str = "local"
    ray: RaySpec = field(default_factory=RaySpec)
    shard: str | None = None


RUN_OPTIONS = frozenset(f.name for f in fields(RunSpec)) - {"ray", "engine", "shard"}


def split_options(options: dict) -> tuple[dict, RunSpec]:
    """``(the extractor's options, RunSpec)`` from one flat keyword dict (the keyword form of the Python API)."""
    run = {k: options[k] for k in RUN_OPTIONS if k in options}
    return {k: v for k, v in options.items() if k not in RUN_OPTIONS}, RunSpec(**run)
