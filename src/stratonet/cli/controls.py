"""The control-naming options shared by index, profile, evaluate and report."""

from __future__ import annotations

from pathlib import Path

import click

from stratonet.core.controlnames import CONTROL_COLUMN, ControlNames, parse_values, read_control_file


def control_options(f):
    """``--control-column``, ``--negcon``, ``--poscon`` and ``--controls FILE``."""
    opts = [
        click.option("--controls", "controls_file", type=click.Path(path_type=Path), default=None,
                     help="CSV/TSV naming the controls: columns value, control_type (negcon/poscon) and optionally "
                          "column; instead of --negcon/--poscon."),
        click.option("--poscon", default=None,
                     help="Value(s) of the control column that are positive controls, comma-separated "
                          "[default: poscon], e.g. positive_control."),
        click.option("--negcon", default=None,
                     help="Value(s) of the control column that are negative controls, comma-separated "
                          "[default: negcon], e.g. negative_control or DMSO."),
        click.option("--control-column", default=CONTROL_COLUMN, show_default=True,
                     help="Column naming the controls; its --negcon/--poscon rows become Metadata_control_type "
                          "negcon/poscon."),
    ]
    for opt in opts:
        f = opt(f)
    return f


def control_names(control_column: str, negcon: str | None, poscon: str | None,
                  controls_file: Path | None) -> ControlNames:
    """The options -> :class:`ControlNames` (``--controls`` excludes the other three)."""
    if controls_file is not None:
        if negcon or poscon or control_column != CONTROL_COLUMN:
            from stratonet.core.errors import ConfigError

            raise ConfigError("--controls FILE names the controls itself; leave out --negcon/--poscon/--control-column")
        return read_control_file(controls_file)
    return ControlNames(control_column, parse_values(negcon, ("negcon",)), parse_values(poscon, ("poscon",)))


def apply_controls(df, names: ControlNames, where: str):
    """Rewrite the table's controls as the options say, printing what changed."""
    from stratonet.core.controlnames import apply_control_names
    from stratonet.core.progress import console

    out, note = apply_control_names(df, names, where)
    if note:
        console.print(note, highlight=False)
    return out
