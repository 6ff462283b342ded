"""Plane references: one 2-D plane inside a multi-dimensional image, written as ``IMAGE#key=value&...``.

The reference itself (:class:`PlaneRef`, :func:`parse_ref`), with no reader: the readers
(:mod:`stratonet.images.ngff`, :mod:`stratonet.images.vendor`) and the dispatcher that picks one
(:mod:`stratonet.images.planes`) all build on it. See :mod:`stratonet.images.planes` for the syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stratonet.core.errors import InputFileError

_FRAGMENT_RE = re.compile(r"^(?P<image>.+)#(?P<frag>(?:[a-z]+=[^&#=]+)(?:&[a-z]+=[^&#=]+)*)$")
_KEYS = {"c", "level", "z", "t", "scene"}


@dataclass(frozen=True)
class PlaneRef:
    """Where one plane lies: the image, its channel index, resolution level, z (an index or ``"max"``), time
    point and, for vendor files, the scene (None for OME-Zarr images)."""

    image: str
    c: int
    level: int = 0
    z: int | str = 0
    t: int = 0
    scene: int | None = None

    def __str__(self) -> str:
        head = f"{self.image}#" + (f"scene={self.scene}&" if self.scene is not None else "")
        level = f"&level={self.level}" if self.scene is None else ""
        return f"{head}c={self.c}{level}&z={self.z}&t={self.t}"

    @property
    def reader(self) -> str:
        """``"zarr"`` or ``"bioio"``."""
        return "zarr" if self.scene is None else "bioio"


def parse_ref(path: object) -> PlaneRef | None:
    """The :class:`PlaneRef` a path names, or None when it is a plain file path.

    Raises
    ------
    InputFileError
        For a fragment with unknown keys or non-integer values (names the path).
    """
    if not isinstance(path, str) or "#" not in path:
        return None
    m = _FRAGMENT_RE.match(path)
    if m is None:
        return None
    parts = dict(item.split("=", 1) for item in m.group("frag").split("&"))
    if not set(parts) <= _KEYS or "c" not in parts:
        return None  # a '#' that is part of a file name, not a plane reference
    try:
        z = parts.get("z", "0")
        return PlaneRef(image=m.group("image"), c=int(parts["c"]), level=int(parts.get("level", 0)),
                        z=z if z == "max" else int(z), t=int(parts.get("t", 0)),
                        scene=int(parts["scene"]) if "scene" in parts else None)
    except ValueError:
        raise InputFileError(path, "bad plane reference (expected e.g. PLATE.zarr/B/3/0#c=1&level=0&z=0&t=0; "
                                   "z may be 'max')") from None
