"""The image index: one row per site (or per single-cell crop for array stacks).

Columns
-------
Metadata_Plate, Metadata_Well (``A01``), Metadata_Site : required site keys
Metadata_Source, Metadata_Batch : optional
Metadata_* : any treatment metadata added by a platemap join
Path_<Channel> : one column per channel, a local path or fsspec URL (e.g. ``Path_DNA``)
Illum_<Channel> : optional, path of the illumination function (.npy) for that channel
Path_Stack + Stack_Channels (array-stack layout) : one ``(C, H, W)`` file per row; ``Stack_Channels`` is
    the ``|``-joined channel order of that file.
"""

from __future__ import annotations

import re

import pandas as pd

from stratonet.core.errors import StratoNetError

PATH_PREFIX = "Path_"
ILLUM_PREFIX = "Illum_"
STACK_PATH = "Path_Stack"
STACK_CHANNELS = "Stack_Channels"
REQUIRED = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
JUMP_CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]

_WELL_RE = re.compile(r"^([A-Za-z]{1,2})0*(\d{1,2})$")


def normalise_well(well: str) -> str:
    """``a1``, ``A1``, ``A01`` -> ``A01``; raises StratoNetError for anything else."""
    m = _WELL_RE.match(str(well).strip())
    if not m:
        raise StratoNetError(f"cannot parse well name '{well}' (expected e.g. A01)")
    return f"{m.group(1).upper()}{int(m.group(2)):02d}"


def well_from_row_col(row: int, col: int) -> str:
    """1-based row and column -> ``A01`` style (rows beyond Z become AA, AB, ...)."""
    row = int(row)
    if row <= 26:
        letters = chr(ord("A") + row - 1)
    else:
        letters = chr(ord("A") + (row - 1) // 26 - 1) + chr(ord("A") + (row - 1) % 26)
    return f"{letters}{int(col):02d}"


def channels_of(index: pd.DataFrame) -> list[str]:
    """Channel names of an index, from its ``Path_<Channel>`` columns or its stack channel list."""
    if STACK_PATH in index.columns:
        if STACK_CHANNELS not in index.columns or index.empty:
            raise StratoNetError(f"array-stack index lacks the '{STACK_CHANNELS}' column")
        return str(index[STACK_CHANNELS].iloc[0]).split("|")
    chans = [c[len(PATH_PREFIX):] for c in index.columns if c.startswith(PATH_PREFIX)]
    if not chans:
        raise StratoNetError("index has no Path_<Channel> columns")
    return chans


def select_channels(index: pd.DataFrame, channels, source: str,
                    error: type[StratoNetError] = StratoNetError) -> tuple[list[str], list[str]]:
    """The channels asked for (every channel of the index when ``channels`` is empty) and the index's channels.

    Raises
    ------
    StratoNetError (or ``error``)
        When a channel asked for is not in the index, naming ``source`` and the channels it has.
    """
    available = channels_of(index)
    chans = list(channels) if channels else available
    absent = [c for c in chans if c not in available]
    if absent:
        raise error(f"{source}: channel(s) {absent} not in the index (it has {', '.join(available)})")
    return chans, available


def validate_index(index: pd.DataFrame, name: str = "index") -> None:
    """Check the required columns exist; raise a one-line StratoNetError naming what is missing."""
    missing = [c for c in REQUIRED if c not in index.columns]
    if missing:
        raise StratoNetError(f"{name}: missing required column(s) {missing}")
    channels_of(index)


def site_name(row: pd.Series | dict) -> str:
    """``plate/well/site`` for an index row; ``plate/well/site object N`` for a single-cell crop, so that an error
    names the crop, not the field that 50 crops share (issue 27, D11)."""
    name = f"{row['Metadata_Plate']}/{row['Metadata_Well']}/{row['Metadata_Site']}"
    obj = row.get("Metadata_ObjectNumber") if hasattr(row, "get") else None
    return name if obj is None or (isinstance(obj, float) and obj != obj) else f"{name} object {obj}"


def site_paths(row: pd.Series | dict, channels: list[str] | None = None) -> dict[str, str]:
    """Channel -> path mapping of an index row."""
    keys = [k for k in row.keys() if str(k).startswith(PATH_PREFIX) and k != STACK_PATH]
    out = {k[len(PATH_PREFIX):]: row[k] for k in keys}
    if channels is not None:
        out = {c: out.get(c) for c in channels}
    return out


# --- array stacks: how a stack's axes are laid out (pure shape rules; read by io, checks and arrays) ---------

def stack_layout(shape: tuple[int, ...], n_channels: int) -> str | None:
    """How a stack of ``n_channels`` channels is laid out: ``"CHW"``, ``"HWC"`` (channels last) or ``"HW"``
    (a 2-D single-channel image); None if the shape fits none of them."""
    if len(shape) == 2 and n_channels == 1:
        return "HW"
    if len(shape) == 3 and shape[0] == n_channels:
        return "CHW"
    if len(shape) == 3 and shape[-1] == n_channels:
        return "HWC"
    return None


def as_chw(stack, n_channels: int):
    """A stack as ``(C, H, W)`` whatever its layout (see :func:`stack_layout`); None if it fits none."""
    import numpy as np

    layout = stack_layout(tuple(stack.shape), n_channels)
    if layout == "HW":
        return stack[None]
    if layout == "HWC":
        return np.moveaxis(stack, -1, 0)
    return stack if layout == "CHW" else None
