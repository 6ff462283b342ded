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

from stratonet.core.errors import ConfigError


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; one-line ConfigError if missing or malformed."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                          "save the file as UTF-8") from exc
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
    params = _option_keys(command)
    for key, value in data.items():
        k = str(key).lstrip("-").replace("-", "_")
        if k not in params:
            shown = {n for n, p in params.items() if p.name not in ("config", "help")}
            valid = ", ".join(sorted(n for n in shown if not _is_internal_alias(n, params)))
            raise ConfigError(f"{source}: unknown option '{key}' for '{where}' (valid: {valid})")
        param = params[k]
        if param.name in out:
            raise ConfigError(f"{source}: option '{key}' given twice for '{where}'")
        out[param.name] = _convert(param, value, source, where)
    return out


def _option_keys(command: click.Command) -> dict[str, click.Option]:
    """YAML key -> option: the CLI spelling (``batch_size`` for ``--batch-size``, ``aggregate`` for ``--aggregate``
    even when its parameter is called ``level``) and the internal parameter name both work."""
    options = [p for p in command.params if p.name and isinstance(p, click.Option)]
    keys: dict[str, click.Option] = {p.name: p for p in options}
    for p in options:  # the CLI spelling wins where it equals another option's internal name
        for opt in p.opts:
            if opt.startswith("--"):
                keys[opt[2:].replace("-", "_")] = p
    return keys


def _is_internal_alias(key: str, params: dict[str, click.Option]) -> bool:
    """True for an internal parameter name that differs from the option's CLI spelling (kept out of help lists)."""
    p = params[key]
    cli_names = [o[2:].replace("-", "_") for o in p.opts if o.startswith("--")]
    return key == p.name and bool(cli_names) and key not in cli_names


def _convert(param: click.Parameter, value: Any, source: str, where: str) -> Any:
    key = _cli_name(param)
    try:
        if param.multiple or (param.nargs != 1):
            values = value if isinstance(value, (list, tuple)) else [value]
            return [param.type.convert(v, param, None) for v in values]
        if isinstance(value, (list, tuple, dict)):
            kind = "list" if isinstance(value, (list, tuple)) else "mapping"
            raise ConfigError(f"{source}: bad value for '{key}' in '{where}': expected one {param.type.name} "
                              f"value, got a {kind}")
        if isinstance(param.type, click.types.IntParamType) and isinstance(value, (float, bool)):
            value = str(value)  # as typed on the command line: 8.7 is refused there, never truncated to 8
        return param.type.convert(value, param, None)
    except click.BadParameter as exc:
        raise ConfigError(f"{source}: bad value for '{key}' in '{where}': {exc.message}") from exc
    except (TypeError, ValueError) as exc:  # click's converters let some wrong YAML types through
        raise ConfigError(f"{source}: bad value for '{key}' in '{where}': {value!r} is not a valid "
                          f"{param.type.name}") from exc


def _cli_name(param: click.Parameter) -> str:
    """``batch-size`` for ``--batch-size``: the spelling a user wrote."""
    longs = [o[2:] for o in getattr(param, "opts", []) if o.startswith("--")]
    return longs[0] if longs else str(param.name)


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
