"""The import graph of sbench/, read with `ast` (imports inside functions and under TYPE_CHECKING count too):
no cycles, the config layer below everything that runs or prints, the engine free of Ray, and importlib only
where a module is truly optional."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SBENCH = Path(__file__).resolve().parent.parent / "sbench"

#: modules allowed to use importlib, and why
IMPORTLIB_ALLOWED = {
    "sbench.storage.registry": "drivers are optional: a missing cloud package must not break file:// runs",
    "sbench.submit.jobspec": "a pip/uv runtime_env installs the installed sbench's pinned dependencies",
    "sbench.config.models": "uvloop is an optional extra: `workers.event_loop: uvloop` without it is refused "
    "at load time, naming the key",
}
#: what config/ may import: the rules below it (object layout, storage URIs and options, error types)
BELOW_CONFIG = ("sbench.config", "sbench.layout", "sbench.storage", "sbench.errors", "sbench.data")
#: what plan/ may import: the config and what is below it
BELOW_PLAN = (*BELOW_CONFIG, "sbench.plan")
#: the one module of run/ that may reach the Ray fleet (it picks the fleet, importing Ray only for it)
FLEET_CHOOSER = "sbench.run.launch"


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


def test_there_is_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_config_layer_imports_nothing_above_it() -> None:
    graph = _graph()
    wrong = {
        (m, d)
        for m, deps in graph.items()
        if m.startswith("sbench.config")
        for d in deps
        if not d.startswith(BELOW_CONFIG)
    }
    assert wrong == set()


def test_the_plan_layer_imports_only_the_config_and_below() -> None:
    graph = _graph()
    wrong = {
        (m, d)
        for m, deps in graph.items()
        if m.startswith("sbench.plan")
        for d in deps
        if not d.startswith(BELOW_PLAN)
    }
    assert wrong == set()


def test_the_driver_knows_no_fleet_but_its_interface() -> None:
    """run/ (driver, in-process fleet, records, report) never imports the Ray fleet; only the chooser does."""
    graph = _graph()
    wrong = {
        (m, d)
        for m, deps in graph.items()
        if m.startswith("sbench.run") and m != FLEET_CHOOSER
        for d in deps
        if d.startswith("sbench.cluster")
    }
    assert wrong == set()


def test_the_engine_never_imports_ray() -> None:
    offenders = [
        name
        for name, path in _modules().items()
        if name.startswith(
            ("sbench.engine", "sbench.storage", "sbench.metrics", "sbench.config", "sbench.plan")
        )
        or (name.startswith("sbench.run") and name != FLEET_CHOOSER)
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
