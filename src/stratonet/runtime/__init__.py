"""How a run executes: resume and parts, locks, shards, engines (local, Ray), manifests.

The runs that execute here are reachable from the package itself: ``extract_deep``
(:mod:`stratonet.runtime.deep_run`), ``extract_pixel`` (:mod:`stratonet.runtime.pixel_run`), ``extract_classical``
(:mod:`stratonet.runtime.classical_run`) and ``make_plate`` (:mod:`stratonet.runtime.synth_run`), imported on first
use (so that importing a runtime module does not import torch).
"""

_ENTRY_POINTS = {"extract_deep": "stratonet.runtime.deep_run", "extract_pixel": "stratonet.runtime.pixel_run",
                 "extract_classical": "stratonet.runtime.classical_run", "make_plate": "stratonet.runtime.synth_run",
                 "RunSpec": "stratonet.runtime.spec", "RaySpec": "stratonet.runtime.spec"}

__all__ = sorted(_ENTRY_POINTS)


def __getattr__(name: str):
    if name in _ENTRY_POINTS:
        import importlib

        return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
    raise AttributeError(f"module 'stratonet.runtime' has no attribute {name!r}")
