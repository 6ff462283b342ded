"""The image index: builders for each layout, metadata joins and checks (see :mod:`stratonet.index.schema`)."""

from stratonet.index.build import LAYOUTS, build_index, default_layout
from stratonet.index.options import IndexOptions

__all__ = ["LAYOUTS", "IndexOptions", "build_index", "default_layout"]
