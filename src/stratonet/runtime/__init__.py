"""How a run executes: resumable parts, locks, shards, engines (local, Ray Data, Ray tasks).

The runs that execute here are reachable from the package itself, imported on first use so that importing one
runtime module stays cheap: ``from stratonet.runtime import extract_classical, make_plate``.
"""


def __getattr__(name: str):
    if name == "extract_classical":
        from stratonet.runtime.classical_run import extract_classical

        return extract_classical
    if name == "make_plate":
        from stratonet.runtime.synth_run import make_plate

        return make_plate
    raise AttributeError(f"module 'stratonet.runtime' has no attribute {name!r}")
