"""Plate formats (96, 384, 1536 wells) and the check that every well of a plate exists on it.

``Z99`` or ``A13`` on a 96-well plate is a typo or a wrong platemap, never a real well; it is refused with a one-line
error naming the plate and the well. The format is given (``--plate-format``) or inferred per plate as the smallest
format that holds all its wells.
"""

from __future__ import annotations

import re

import pandas as pd

from stratonet.core.errors import StratoNetError

FORMATS = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}  # wells -> (rows, columns)
_WELL = re.compile(r"^([A-Z]{1,2})(\d+)$")


def row_letters(n: int) -> str:
    """1 -> A, 26 -> Z, 27 -> AA, 32 -> AF (the convention of 1536-well plates)."""
    return chr(ord("A") + n - 1) if n <= 26 else chr(ord("A") + (n - 1) // 26 - 1) + chr(ord("A") + (n - 1) % 26)


def well_position(well: str) -> tuple[int, int] | None:
    """``"B03"`` -> (2, 3), ``"AF48"`` -> (32, 48); None if the name is not letters + number."""
    m = _WELL.match(str(well).strip().upper())
    if not m:
        return None
    letters, col = m.group(1), int(m.group(2))
    row = ord(letters[0]) - ord("A") + 1 if len(letters) == 1 else \
        (ord(letters[0]) - ord("A") + 1) * 26 + ord(letters[1]) - ord("A") + 1
    return row, col


def describe(fmt: int) -> str:
    rows, cols = FORMATS[fmt]
    return f"{fmt}-well plate (rows A-{row_letters(rows)}, columns 01-{cols:02d})"


def parse_plate_format(value: str | int | None) -> int | None:
    """``"auto"``/None -> None; ``"96"``/``384``/``"1536"`` -> the int; anything else is an error."""
    if value is None or str(value).strip().lower() in ("", "auto"):
        return None
    try:
        fmt = int(str(value).strip())
    except ValueError:
        fmt = -1
    if fmt not in FORMATS:
        raise StratoNetError(f"plate format must be auto, 96, 384 or 1536, got '{value}'")
    return fmt


def check_wells(index: pd.DataFrame, plate_format: str | int | None = None, source: str = "index") -> dict[str, int]:
    """Check every ``Metadata_Well`` of each plate against its plate format.

    Parameters
    ----------
    index : DataFrame
        With ``Metadata_Plate`` and ``Metadata_Well`` (``A01`` style).
    plate_format : {"auto", 96, 384, 1536}, optional
        ``auto`` (or None): per plate, the smallest format holding all its wells.
    source : str
        Names the input in errors.

    Returns
    -------
    dict
        Plate -> its (given or inferred) format.

    Raises
    ------
    StratoNetError
        One line naming the source, plate and first bad well.
    """
    fixed = parse_plate_format(plate_format)
    out: dict[str, int] = {}
    for plate, wells in index.groupby("Metadata_Plate", sort=False)["Metadata_Well"]:
        positions = {}
        for w in pd.unique(wells):
            pos = well_position(w)
            if pos is None or pos[0] < 1 or pos[1] < 1:
                raise StratoNetError(f"{source}: plate {plate}: well '{w}' is not a well name (expected e.g. A01)")
            positions[w] = pos
        max_row = max(r for r, _ in positions.values())
        max_col = max(c for _, c in positions.values())
        if fixed is not None:
            rows, cols = FORMATS[fixed]
            bad = [w for w, (r, c) in positions.items() if r > rows or c > cols]
            if bad:
                raise StratoNetError(f"{source}: plate {plate}: well {bad[0]} is not on a {describe(fixed)}"
                                     + (f" ({len(bad)} such wells)" if len(bad) > 1 else ""))
            out[str(plate)] = fixed
            continue
        fits = [f for f, (rows, cols) in FORMATS.items() if max_row <= rows and max_col <= cols]
        if not fits:
            bad = next(w for w, (r, c) in positions.items() if r > 32 or c > 48)
            raise StratoNetError(f"{source}: plate {plate}: well {bad} is outside every plate format "
                                 f"(largest: {describe(1536)})")
        out[str(plate)] = fits[0]
        _warn_if_few_wells_decide(plate, positions, fits[0], source)
    return out


def _warn_if_few_wells_decide(plate, positions: dict, fmt: int, source: str) -> None:
    """Say so when one or two wells alone make an inferred plate larger (e.g. ``A25`` making a 384-well plate a
    1536-well one): that is often a typo, which ``--plate-format`` would refuse (issue 27, D9)."""
    smaller = [f for f in FORMATS if f < fmt]
    if not smaller:
        return
    rows, cols = FORMATS[max(smaller)]
    outside = sorted(w for w, (r, c) in positions.items() if r > rows or c > cols)
    if 0 < len(outside) <= 2 and len(positions) > len(outside):
        from stratonet.core.progress import console

        console.print(f"[yellow]note:[/] {source}: plate {plate} taken as a {describe(fmt)} only because of "
                      f"well(s) {', '.join(outside)}; pass --plate-format {max(smaller)} to refuse them as typos",
                      highlight=False)
