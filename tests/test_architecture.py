"""The import graph of sbench/, read with `ast` (imports inside functions and under TYPE_CHECKING count too):
no cycles, the config layer below the engine, the engine free of Ray, and importlib only where a module is
truly optional. Edges that issue 11's plan layer still has to remove are listed by name in KNOWN_TO_FIX; the
test also fails when one of them is gone, so the list can only shrink."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SBENCH = Path(__file__).resolve().parent.parent / "sbench"

#: (importer, imported) edges that break a rule today, to be removed by the plan layer (issue 11): config
#: must not import the engine or the commands; the dry-run summary printer belongs to the UI layer.
KNOWN_TO_FIX = {
    ("sbench.config.summary", "sbench.commands.run"),
    ("sbench.config.summary", "sbench.engine.naming"),
    ("sbench.config.summary", "sbench.engine.paths"),
    ("sbench.config.summary", "sbench.engine.tree"),
    ("sbench.config.confinement", "sbench.engine.paths"),
    ("sbench.config.tree_math", "sbench.engine.tree"),
    ("sbench.config.validation", "sbench.engine.tree"),
}
#: modules allowed to use importlib, and why
IMPORTLIB_ALLOWED = {
    "sbench.storage.registry": "drivers are optional: a missing cloud package must not break file:// runs",
}
#: layers config/ must never import
ABOVE_CONFIG = ("sbench.engine", "sbench.cluster", "sbench.commands", "sbench.ui")


def _modules() -> dict[str, Path]:
    out = {}
    for path in SBENCH.rglob("*.py"):
        parts = path.relative_to(SBENCH.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """Every sbench module `name` imports (a `from package import module` names the module)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("sbench"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("sbench"):
                continue
            for alias in node.names:
                child = f"{module}.{alias.name}"
                yield child if child in known else module


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: {d for d in _imports(name, path, known) if d in known and d != name}
        for name, path in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _without_known(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: {d for d in deps if (m, d) not in KNOWN_TO_FIX} for m, deps in graph.items()}


def test_there_is_no_import_cycle() -> None:
    assert _cycles(_without_known(_graph())) == []


def test_the_config_layer_imports_nothing_above_it() -> None:
    graph = _graph()
    wrong = {
        (m, d)
        for m, deps in graph.items()
        if m.startswith("sbench.config")
        for d in deps
        if d.startswith(ABOVE_CONFIG)
    }
    assert wrong - KNOWN_TO_FIX == set()


def test_every_known_exception_still_exists_so_the_list_only_shrinks() -> None:
    graph = _graph()
    gone = {(m, d) for m, d in KNOWN_TO_FIX if d not in graph.get(m, set())}
    assert gone == set(), f"remove these from KNOWN_TO_FIX, they are fixed: {sorted(gone)}"


def test_the_engine_never_imports_ray() -> None:
    offenders = [
        name
        for name, path in _modules().items()
        if name.startswith(("sbench.engine", "sbench.storage", "sbench.metrics", "sbench.config"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any((getattr(node, "module", None) or alias.name).split(".")[0] == "ray" for alias in node.names)
    ]
    assert offenders == []


def test_importlib_only_where_a_module_is_optional() -> None:
    users = {
        name
        for name, path in _modules().items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import) and any(a.name.startswith("importlib") for a in node.names)
    }
    assert users <= set(IMPORTLIB_ALLOWED), sorted(users - set(IMPORTLIB_ALLOWED))
    assert set(IMPORTLIB_ALLOWED) <= users, "an allowed importlib user no longer uses it: drop it"
