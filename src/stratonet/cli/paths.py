"""A click parameter type for inputs that may be local paths or fsspec URLs.

``click.Path(path_type=Path)`` turns ``s3://bucket/key`` into ``s3:/bucket/key`` (pathlib collapses the double
slash); this type hands URLs through untouched as ``str`` and local paths as ``Path``.
"""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.core.remote import is_url


class PathOrURL(click.ParamType):
    """A local path (returned as :class:`pathlib.Path`) or an fsspec URL (returned as ``str``, unchanged)."""

    name = "path_or_url"

    def convert(self, value, param, ctx):
        if isinstance(value, Path):
            return value
        text = str(value)
        return text if is_url(text) else Path(text)


PATH_OR_URL = PathOrURL()
