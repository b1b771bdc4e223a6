"""The package map's rules (docs/architecture.md), read from the source itself:

- no import cycle between project modules, counting imports at module level, inside
  functions and under `if TYPE_CHECKING:`;
- the engines (workers.generation, workers.moderation, workers.triage, workers.training)
  take plain data: neither they nor anything they import, directly or through other
  project modules, imports `bots` or `django.db`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("neo_support", "bots", "retrieval", "workers")
ENGINES = ("workers.generation", "workers.moderation", "workers.triage", "workers.training")
FORBIDDEN_IN_ENGINES = ("bots", "django.db")

Graph = dict[str, set[str]]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every project module by dotted name; migrations are history, not code."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path, root)] = path
    return found


def imported_names(source: str, module: str, is_package: bool) -> Iterable[str]:
    """Every dotted name `source` imports, wherever the import stands (function bodies and
    TYPE_CHECKING blocks included); for `from a import b` both `a.b` and `a`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            yield origin
            for alias in node.names:
                yield f"{origin}.{alias.name}"


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` refers to (a name inside a module resolves to the module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(modules: dict[str, Path]) -> tuple[Graph, dict[str, set[str]]]:
    """Project module -> project modules it imports, and project module -> every dotted
    name it imports (outside modules included). Importing `a.b.c` also runs the packages
    `a` and `a.b`, so those are edges too."""
    graph: Graph = {}
    external: dict[str, set[str]] = {}
    for module, path in modules.items():
        names = set(imported_names(path.read_text(), module, path.name == "__init__.py"))
        external[module] = names
        targets: set[str] = set()
        for name in names:
            target = _resolve(name, modules)
            if target is None:
                continue
            targets.add(target)
            parts = target.split(".")
            targets.update(".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in modules)
        targets.discard(module)
        graph[module] = targets
    return graph, external


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted.
    Package `__init__` edges are left out: a package importing its own submodule is
    not a cycle with a submodule whose import runs that package."""
    edges = {
        module: {t for t in targets if not module.startswith(f"{t}.") and not t.startswith(f"{module}.")}
        for module, targets in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        # Iterative, so a deep import chain cannot hit the recursion limit.
        work: list[tuple[str, list[str]]] = [(start, sorted(edges[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                child = pending.pop()
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, sorted(edges.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def _reachable(graph: Graph, start: str) -> dict[str, str]:
    """Every module `start` reaches, each with the module that imported it first."""
    seen = {start: ""}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for target in sorted(graph.get(module, ())):
            if target not in seen:
                seen[target] = module
                queue.append(target)
    return seen


def engine_violations(graph: Graph, external: dict[str, set[str]]) -> list[str]:
    """For each engine module, the first path by which it reaches `bots` or `django.db`."""
    problems = []
    for engine in sorted(m for m in graph if m.startswith(ENGINES)):
        reached = _reachable(graph, engine)
        for module in reached:
            bad = sorted(
                name
                for name in {module, *external.get(module, ())}
                if any(name == f or name.startswith(f"{f}.") for f in FORBIDDEN_IN_ENGINES)
            )
            if bad:
                path = [module]
                while reached[path[-1]]:
                    path.append(reached[path[-1]])
                problems.append(f"{engine} reaches {bad[0]} via {' -> '.join(reversed(path))}")
                break
    return problems


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture(scope="module")
def project() -> tuple[Graph, dict[str, set[str]]]:
    return import_graph(project_modules())


def test_the_scan_sees_the_project(project: tuple[Graph, dict[str, set[str]]]) -> None:
    graph, _external = project
    assert len(graph) > 150
    assert "workers.generation.answer" in graph["bots.chat.replies"]
    assert "bots.chat.services" in graph["bots.chat.tasks"]


def test_no_project_module_imports_another_in_a_cycle(project: tuple[Graph, dict[str, set[str]]]) -> None:
    graph, _external = project
    assert cycles(graph) == []


def test_the_engines_reach_neither_bots_nor_the_database(project: tuple[Graph, dict[str, set[str]]]) -> None:
    graph, external = project
    assert engine_violations(graph, external) == []


def test_a_cycle_through_a_function_level_import_is_caught(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "bots/__init__.py": "",
            "bots/a.py": "from bots.b import thing\n",
            "bots/b.py": "def thing():\n    from bots import a\n    return a\n",
            "retrieval/__init__.py": "",
            "retrieval/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from retrieval.d import D\n",
            "retrieval/d.py": "from retrieval.c import *\n",
        },
    )
    graph, _external = import_graph(project_modules(tmp_path))
    assert cycles(graph) == [["bots.a", "bots.b"], ["retrieval.c", "retrieval.d"]]


def test_an_engine_reaching_the_orm_is_caught(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "workers/__init__.py": "",
            "workers/generation/__init__.py": "",
            "workers/generation/fine.py": "import numpy\n",
            "workers/generation/direct.py": "from django.db.models import Q\n",
            "workers/generation/indirect.py": "def f():\n    from retrieval.rows import load\n",
            "workers/moderation/__init__.py": "",
            "workers/moderation/domain.py": "import bots.models\n",
            "retrieval/__init__.py": "",
            "retrieval/rows.py": "from django.db import models\n",
            "bots/__init__.py": "",
            "bots/models.py": "",
        },
    )
    graph, external = import_graph(project_modules(tmp_path))
    assert engine_violations(graph, external) == [
        "workers.generation.direct reaches django.db.models via workers.generation.direct",
        "workers.generation.indirect reaches django.db via workers.generation.indirect -> retrieval.rows",
        "workers.moderation.domain reaches bots.models via workers.moderation.domain",
    ]
