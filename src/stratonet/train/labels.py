"""A persisted label encoding: class name <-> integer, saved as JSON beside the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from stratonet.core.errors import InputFileError, StratoNetError


class LabelEncoding:
    """Sorted class names and their integer codes.

    Parameters
    ----------
    classes : sequence of str
        Class names; code ``i`` is ``classes[i]``.
    column : str, optional
        The index column the labels came from (recorded in the JSON).
    """

    def __init__(self, classes: Sequence[str], column: str | None = None):
        self.classes = [str(c) for c in classes]
        if len(set(self.classes)) != len(self.classes):
            raise StratoNetError(f"duplicate class names in label encoding: {self.classes}")
        self.column = column
        self._code = {c: i for i, c in enumerate(self.classes)}

    @classmethod
    def fit(cls, labels: Iterable[object], column: str | None = None) -> "LabelEncoding":
        """Encoding of the distinct values of ``labels``, sorted as strings."""
        return cls(sorted({str(v) for v in labels}), column)

    def encode(self, labels: Iterable[object]) -> np.ndarray:
        """Integer codes; an unknown label is a one-line error."""
        out = []
        for v in labels:
            try:
                out.append(self._code[str(v)])
            except KeyError:
                raise StratoNetError(f"label '{v}' is not in the encoding ({len(self.classes)} classes)") from None
        return np.asarray(out, dtype=np.int64)

    def decode(self, codes: Iterable[int]) -> list[str]:
        """Class names of integer codes."""
        return [self.classes[int(i)] for i in codes]

    def __len__(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict:
        return {"column": self.column, "classes": self.classes}

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2))
        return p

    @classmethod
    def load(cls, path: str | Path) -> "LabelEncoding":
        p = Path(path)
        if not p.exists():
            raise InputFileError(str(p), "label encoding not found")
        try:
            d = json.loads(p.read_text())
            return cls(d["classes"], d.get("column"))
        except (ValueError, KeyError) as exc:
            raise InputFileError(str(p), f"not a label encoding ({exc})") from exc
