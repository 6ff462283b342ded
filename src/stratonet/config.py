"""Options from YAML files, validated against the CLI, and the resolved configuration of every run.

A config file mirrors the command tree; each command's keys are its option names (dashes or underscores)::

    extract:
      deep:
        model: stratonet50
        batch_size: 128
    synth:
      wells: 96

Values are checked with the options' own types, and unknown keys are rejected with the list of valid ones.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import click
import yaml

from stratonet.errors import ConfigError


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; one-line ConfigError if missing or malformed."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{p}: invalid YAML{where}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of commands to options, got {type(data).__name__}")
    return data


def to_default_map(command: click.Command, data: dict, source: str, path: str = "") -> dict:
    """Validate ``data`` against ``command`` and return a click ``default_map``.

    Raises
    ------
    ConfigError
        For unknown commands or options and for values of the wrong type.
    """
    out: dict[str, Any] = {}
    where = path or "top level"
    if isinstance(command, click.Group):
        subs = command.commands
        params = {p.name: p for p in command.params if p.name}
        for key, value in data.items():
            k = str(key).replace("-", "_")
            name = str(key)
            if name in subs:
                if not isinstance(value, dict):
                    raise ConfigError(f"{source}: '{path + ' ' if path else ''}{name}' must be a mapping of options")
                out[name] = to_default_map(subs[name], value, source, f"{path} {name}".strip())
            elif k in params:
                out[k] = _convert(params[k], value, source, where)
            else:
                valid = sorted(list(subs) + list(params))
                raise ConfigError(f"{source}: unknown key '{name}' at {where} (valid: {', '.join(valid)})")
        return out
    params = {p.name: p for p in command.params if p.name and isinstance(p, click.Option)}
    for key, value in data.items():
        k = str(key).replace("-", "_")
        if k not in params:
            valid = ", ".join(sorted(n for n in params if n not in ("config", "help")))
            raise ConfigError(f"{source}: unknown option '{key}' for '{where}' (valid: {valid})")
        out[k] = _convert(params[k], value, source, where)
    return out


def _convert(param: click.Parameter, value: Any, source: str, where: str) -> Any:
    try:
        if param.multiple or (param.nargs != 1):
            values = value if isinstance(value, (list, tuple)) else [value]
            return [param.type.convert(v, param, None) for v in values]
        return param.type.convert(value, param, None)
    except click.BadParameter as exc:
        raise ConfigError(f"{source}: bad value for '{param.name}' in '{where}': {exc.message}") from exc


def resolved_config(ctx: click.Context) -> dict:
    """The full option set of the running command, with the command path, version and time."""
    from stratonet import __version__

    params = {}
    c: click.Context | None = ctx
    chain = []
    while c is not None:
        chain.append(c)
        c = c.parent
    for c in reversed(chain):
        params.update({k: _plain(v) for k, v in c.params.items()})
    return {
        "command": ctx.command_path,
        "stratonet_version": __version__,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "options": params,
    }


def _plain(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "value") and not isinstance(v, (int, float, str)):
        return v.value
    return v


def write_run_config(ctx: click.Context, out_dir: str | Path, name: str | None = None) -> Path:
    """Write the resolved configuration as ``<out_dir>/<name>.config.yaml`` and return its path."""
    cfg = resolved_config(ctx)
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    stem = name or ctx.command_path.replace(" ", "_").removeprefix("stratonet_") or "run"
    p = d / f"{stem}.config.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p
