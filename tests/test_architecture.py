"""Architecture rules read from the source with ``ast``: no import cycle, imports only down the layers, small functions.

The layers (docs/architecture.md), top to bottom::

    cli                                    5
    demo, report                           4
    runtime                                3
    extract, profile, evaluate, assay, train, synth     2
    models, index, images                  1
    core                                   0   (also remote file access and the CPU-load probe)

A module imports only from its own layer or below. ``LAYERS`` names the layer of every package (docs/architecture.md
draws the same map). Every import counts, also one inside a function: a lazy import hides a cycle from Python, not
from a reader.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path


SRC = Path(__file__).resolve().parents[1] / "src"
PKG = "stratonet"

#: Layer of a dotted module path (relative to ``stratonet``), by longest prefix. Both layouts in one map.
LAYERS: dict[str, int] = {
    # core
    "": 0, "core": 0,
    # models / index / images
    "models": 1, "index": 1, "images": 1,
    # stages
    "extract": 2, "profile": 2, "evaluate": 2, "assay": 2, "train": 2, "synth": 2, "export": 2,
    # runtime
    "runtime": 3,
    # demo / report
    "demo": 4, "report": 4,
    # cli
    "cli": 5, "__main__": 5,
}
LAYER_NAMES = {0: "core", 1: "models/index/images", 2: "stages", 3: "runtime", 4: "demo/report", 5: "cli"}

MAX_LINES = 100
MAX_PARAMS = 12


# --- reading the source ------------------------------------------------------------------------------------------

def module_of(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@lru_cache(maxsize=1)
def sources() -> dict[str, tuple[Path, ast.Module]]:
    """Every module of the package: dotted name -> (path, parsed tree)."""
    out = {}
    for p in sorted((SRC / PKG).rglob("*.py")):
        if "__pycache__" not in p.parts:
            out[module_of(p)] = (p, ast.parse(p.read_text(), filename=str(p)))
    return out


def _target(name: str, mods) -> str | None:
    """The module an imported dotted name lives in (``stratonet.x.y`` -> ``stratonet.x`` if y is no module)."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


@lru_cache(maxsize=1)
def import_graph() -> dict[str, set[str]]:
    """Module -> the stratonet modules it imports (every import statement, also inside functions)."""
    mods = sources()
    graph: dict[str, set[str]] = {}
    for mod, (path, tree) in mods.items():
        is_pkg = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod if is_pkg else mod.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for n in names:
                if n.split(".")[0] != PKG:
                    continue
                t = _target(n, mods)
                if t and t != mod and t != PKG:
                    deps.add(t)
        graph[mod] = deps
    return graph


def layer_of(mod: str) -> int | None:
    """Layer of a module by the longest prefix in LAYERS; None for a module LAYERS does not place (a new module at
    the package root: ``test_every_module_has_a_layer`` names it)."""
    rel = mod[len(PKG) + 1:] if mod.startswith(PKG + ".") else ""
    if rel and not _has_layer(mod):
        return None
    parts = rel.split(".") if rel else []
    for k in range(len(parts), -1, -1):
        key = ".".join(parts[:k])
        if key in LAYERS:
            return LAYERS[key]
    return None


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def upward_imports() -> set[tuple[str, str]]:
    graph = import_graph()
    return {(m, d) for m, deps in graph.items() for d in deps
            if layer_of(m) is not None and layer_of(d) is not None and layer_of(d) > layer_of(m)}


def long_functions() -> list[str]:
    out = []
    for mod, (_, tree) in sources().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    out.append(f"{mod}:{node.name} ({n} lines)")
    return sorted(out)


def wide_functions() -> list[str]:
    out = []
    for mod, (_, tree) in sources().items():
        if mod.startswith(f"{PKG}.cli"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
                n -= bool(a.args and a.args[0].arg in ("self", "cls"))
                if n > MAX_PARAMS:
                    out.append(f"{mod}:{node.name} ({n} parameters)")
    return sorted(out)


# --- the rules ---------------------------------------------------------------------------------------------------

def test_every_module_has_a_layer():
    missing = [m for m in sources() if m != PKG and not _has_layer(m)]
    assert not missing, f"modules with no layer in LAYERS (add them, and to docs/architecture.md): {missing}"


def _has_layer(mod: str) -> bool:
    rel = mod[len(PKG) + 1:]
    parts = rel.split(".")
    return any(".".join(parts[:k]) in LAYERS for k in range(len(parts), 0, -1))


def test_the_graph_sees_lazy_and_relative_imports():
    """The reader itself: a function-level import and a package's own modules are edges."""
    graph = import_graph()
    assert f"{PKG}.cli" in graph and graph[f"{PKG}.cli"], "the CLI imports its commands"
    assert any(graph.values())


def test_no_import_cycle():
    found = cycles()
    assert not found, "import cycles (break each with a lower module both sides can use):\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_no_import_from_a_layer_above():
    found = upward_imports()
    lines = [f"{m} ({LAYER_NAMES[layer_of(m)]}) imports {d} ({LAYER_NAMES[layer_of(d)]})" for m, d in sorted(found)]
    assert not found, "imports that go up a layer:\n" + "\n".join(lines)


def test_no_function_over_100_lines():
    found = long_functions()
    assert not found, f"{len(found)} functions over {MAX_LINES} lines:\n" + "\n".join(
        found)


def test_no_function_with_more_than_12_parameters_outside_the_cli():
    found = wide_functions()
    assert not found, f"{len(found)} functions with more than {MAX_PARAMS} parameters:\n" + "\n".join(
        found)
