"""Import structure: no import cycles in shared/ or syncctl/, and the layers import downwards.

The graph is read from the source with `ast`, so it sees every import a module can make: at
module level, inside functions (a "lazy" import that dodges a cycle at start-up is still a
cycle in the design) and under `if TYPE_CHECKING:`. Importing `a.b.c` also runs the packages
`a` and `a.b` (their `__init__`), so those count as imported too, except packages that enclose
the importing module itself (already being imported when it runs).

Layers, top to bottom: functions/ (the Azure Functions app) and syncctl/ (the operator CLI)
above sandbox/ (simulators and the local host) above shared/ (the core package).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "syncctl", "sandbox", "functions")

# Cycles that exist today and are someone's open work, each with the reason. Empty is the goal.
KNOWN_CYCLES: dict[frozenset[str], str] = {}
# Imports against the layers that exist today, each with the reason. Empty is the goal.
KNOWN_UPWARD_IMPORTS: dict[tuple[str, str], str] = {}


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the given packages."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name `module` imports (for `from x import y`: `x.y`, which may be a module)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            yield source
            yield from (f"{source}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value  # importlib.import_module("pkg.mod")


def import_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the project modules it imports (directly, including the packages they run)."""
    modules = module_files(root, packages)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        enclosing = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        targets: set[str] = set()
        for name in _imported_names(module, path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if not name:
                continue
            parts = name.split(".")
            targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        graph[module] = {t for t in targets if t in modules and t != module and t not in enclosing}
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def _describe(component: frozenset[str], graph: Mapping[str, set[str]]) -> str:
    edges = sorted(f"{a} -> {b}" for a in component for b in graph[a] if b in component)
    return "cycle: " + "; ".join(edges)


def _top(module: str) -> str:
    return module.split(".")[0]


def reaches(graph: Mapping[str, set[str]], start: str, goal: str) -> list[str] | None:
    """An import path from `start` to `goal`, if there is one."""
    seen = {start}
    paths = [[start]]
    while paths:
        path = paths.pop(0)
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == goal:
                return [*path, nxt]
            if nxt not in seen:
                seen.add(nxt)
                paths.append([*path, nxt])
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_no_import_cycle_inside_shared_or_syncctl_or_between_sandbox_and_syncctl(
    graph: dict[str, set[str]],
) -> None:
    problems = []
    for component in cycles(graph):
        tops = {_top(m) for m in component}
        in_scope = "shared" in tops or "syncctl" in tops
        if in_scope and component not in KNOWN_CYCLES:
            problems.append(_describe(component, graph))
    assert not problems, "\n".join(problems)


def test_known_cycles_are_still_there(graph: dict[str, set[str]]) -> None:
    """An exception that no longer applies is removed from KNOWN_CYCLES, not left to hide a new one."""
    present = set(cycles(graph))
    assert [sorted(c) for c in KNOWN_CYCLES if c not in present] == []


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("shared", ("sandbox", "syncctl", "functions")),
        ("sandbox", ("syncctl", "functions")),
        ("syncctl", ("functions",)),
    ],
)
def test_layers_import_only_downwards(
    graph: dict[str, set[str]], layer: str, forbidden: tuple[str, ...]
) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if _top(module) == layer
        for target in targets
        if _top(target) in forbidden and (module, target) not in KNOWN_UPWARD_IMPORTS
    )
    assert not wrong, "\n".join(wrong)


def test_known_upward_imports_are_still_there(graph: dict[str, set[str]]) -> None:
    assert [pair for pair in KNOWN_UPWARD_IMPORTS if pair[1] not in graph.get(pair[0], set())] == []


def test_the_bus_does_not_depend_on_the_error_classification(graph: dict[str, set[str]]) -> None:
    """shared.resilience classifies the bus's own errors (shared.bus.port), so nothing in
    shared.bus may import it, directly or through another module (shared.outcomes is plain data)."""
    paths = [
        path
        for module in sorted(graph)
        if module.startswith("shared.bus")
        if (path := reaches(graph, module, "shared.resilience")) is not None
    ]
    assert not paths, "\n".join(" -> ".join(p) for p in paths)


CORE = ("shared.model", "shared.quality", "shared.mapping")


def test_the_canonical_core_imports_no_adapter(graph: dict[str, set[str]]) -> None:
    """The canonical model, data quality and mapping are pure: no connector, bus, store, flow or
    engine; only each other and the one System literal (shared.systems)."""
    allowed = (*CORE, "shared.systems")
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith(CORE)
        for target in targets
        if target != "shared" and not target.startswith(allowed)
    )
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "module",
    [*sorted(m for m in module_files(ROOT, ("syncctl",)) if m != "syncctl.__main__"), "sandbox.demo"],
)
def test_each_command_module_imports_on_its_own(module: str) -> None:
    """Imported first in a fresh interpreter (as a test or another tool does), a command module
    loads: syncctl.webhooks used to import syncctl.main, which imports syncctl.webhooks back."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_checker_sees_lazy_type_checking_package_init_and_importlib_imports(tmp_path: Path) -> None:
    """The graph itself: each kind of import that can close a cycle is seen, and a package's
    submodules importing the package they sit in is not a cycle."""
    files = {
        "lazy/__init__.py": "",
        "lazy/low.py": "def helper() -> None:\n    from lazy.high import thing\n",
        "lazy/high.py": "from lazy.low import helper\nthing = 1\n",
        "typed/__init__.py": "",
        "typed/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from typed.b import B\n",
        "typed/b.py": "from . import a\n",
        "q/__init__.py": "from q.dup import d\n",
        "q/norm.py": "n = 1\n",
        "q/dup.py": "from m.cust import C\n",
        "m/__init__.py": "",
        "m/cust.py": "from q.norm import n\n",
        "dyn/__init__.py": "",
        "dyn/user.py": "import importlib\nimportlib.import_module('dyn2.mod')\n",
        "dyn2/__init__.py": "",
        "dyn2/mod.py": "from dyn import user\n",
        "clean/__init__.py": "from clean.leaf import y\n",
        "clean/leaf.py": "y = 2\n",
        "clean/user.py": "from clean import leaf\nimport clean.leaf\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ("lazy", "typed", "q", "m", "dyn", "dyn2", "clean"))
    assert set(cycles(graph)) == {
        frozenset({"lazy.low", "lazy.high"}),
        frozenset({"typed.a", "typed.b"}),
        frozenset({"m.cust", "q", "q.dup"}),
        frozenset({"dyn.user", "dyn2.mod"}),
    }
    assert reaches(graph, "clean.user", "clean.leaf") == ["clean.user", "clean.leaf"]
