"""One rule for a run's identity and for refusing a resume with changed settings (every extractor and engine).

A run's signature holds what shapes its rows, by content: values, and hashes of the files it depends on, never a
path as typed. So the same run named by a relative or an absolute path, from another working folder, or after its
folder moved, resumes; a run with any changed setting is refused, with every changed setting named.
"""

from __future__ import annotations

import json
from pathlib import Path

from stratonet.core.errors import ConfigError
from stratonet.core.runinfo import file_digest  # noqa: F401  (re-exported: a signature records files by content)


def canonical(signature: dict) -> dict:
    """The signature as stored (JSON round trip: tuples become lists, paths and numpy scalars strings)."""
    return json.loads(json.dumps(signature, default=str))


def changed_settings(old: dict, new: dict, partial: bool = False, prefix: str = "") -> list[str]:
    """Every setting whose value differs, as dotted names (``scaling.seed``), sorted.

    ``partial``: compare only the keys ``new`` has (a check made before every setting is known, e.g. before the
    plate percentiles are estimated).
    """
    keys = set(new) if partial else set(old) | set(new)
    diff = []
    for k in sorted(keys):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            diff += changed_settings(a, b, partial, f"{prefix}{k}.")
        elif a != b:
            diff.append(f"{prefix}{k}")
    return diff


def refuse_changed(out: str | Path, old: dict | None, new: dict, partial: bool = False) -> None:
    """Raise :class:`ConfigError` naming every changed setting when ``old`` (the stored signature of existing
    output at ``out``) differs from ``new``; ``old`` None means the output records no signature."""
    if old is None:
        raise ConfigError(f"{out} exists but records no configuration (written by an older version or another "
                          "tool); use --overwrite to start over, or another output")
    diff = changed_settings(old, canonical(new), partial=partial)
    if diff:
        new = canonical(new)
        shown = "; ".join(f"{k}: {_short(_get(old, k))} -> {_short(_get(new, k))}" for k in diff[:8])
        more = f"; and {len(diff) - 8} more" if len(diff) > 8 else ""
        raise ConfigError(f"{out} was written with a different configuration ({', '.join(diff)}): {shown}{more}. "
                          "Rerun with the same settings to resume it, or use --overwrite to start over, or another "
                          "output")


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _short(v) -> str:
    s = json.dumps(v, default=str)
    return s if len(s) <= 40 else s[:37] + "..."
