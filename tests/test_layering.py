"""The layer picture of the README ("How it works"), kept true: which package of `service` may
import which, and no import cycles, read from the source with `ast`.

Imports under `if TYPE_CHECKING:` are left out (they never run); imports inside functions
count, since they run when the function does.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "service"

# Where TensorFlow may be imported: its home, and the training process, which imports it only
# to configure and quiet it (the worker's modules; the API imports none of them, as
# tests/api/test_imports.py checks).
TENSORFLOW = ("tensorflow", "keras")
TENSORFLOW_HOMES = ("service.ml", "service.worker")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(path: Path, root: Path = ROOT) -> set[str]:
    """What a module imports: every `import a.b` and `from a import b` as `a.b`, and for a
    `from` import the module itself (relative imports resolved)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    type_checking_only = {
        id(node)
        for statement in ast.walk(tree)
        if isinstance(statement, ast.If) and _type_checking(statement.test)
        for inner in statement.body
        for node in ast.walk(inner)
    }
    for node in ast.walk(tree):
        if id(node) in type_checking_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@cache
def service_modules() -> dict[str, frozenset[str]]:
    """Each module of `service` -> everything it imports."""
    return {
        module_name(path): frozenset(imported_names(path)) for path in sorted(SERVICE.rglob("*.py"))
    }


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """Each module of `service` -> the modules of `service` it imports."""
    modules = service_modules()
    return {
        name: frozenset(target for target in imported if target in modules and target != name)
        for name, imported in modules.items()
    }


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def edges(source: str, target: str) -> list[str]:
    """`a -> b` for each import of a module in package `target` by one in package `source`."""
    return sorted(
        f"{module} -> {imported}"
        for module, targets in import_graph().items()
        if within(module, source)
        for imported in targets
        if within(imported, target)
    )


def cycles(graph: Mapping[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in graph:
                    continue
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
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
    return sorted(found)


def test_the_cycle_finder_finds_cycles_and_only_cycles() -> None:
    graph = {
        "a": frozenset({"b"}),
        "b": frozenset({"c"}),
        "c": frozenset({"a", "d"}),
        "d": frozenset({"e"}),
        "e": frozenset(),
        "f": frozenset({"g"}),
        "g": frozenset({"f"}),
    }
    assert cycles(graph) == [["a", "b", "c"], ["f", "g"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_the_reader_skips_type_checking_imports_and_resolves_relative_ones(
    tmp_path: Path,
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "mod.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "import os.path\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    import hidden\n"
        "def late():\n"
        "    from pkg.other import thing\n"
    )
    found = imported_names(module, root=tmp_path)
    assert "hidden" not in found
    assert {"os.path", "pkg", "pkg.sibling", "pkg.other", "pkg.other.thing"} <= found


def test_no_import_cycles_in_service() -> None:
    found = cycles(import_graph())
    assert found == [], f"modules that import each other, directly or around a loop: {found}"


def test_serving_and_schemas_never_import_each_other() -> None:
    assert edges("service.serving", "service.schemas") == []
    assert edges("service.schemas", "service.serving") == []


def test_use_cases_take_domain_values_not_the_api_or_its_bodies() -> None:
    """Routes turn HTTP bodies into domain values; below them nothing knows of HTTP."""
    assert edges("service.usecases", "service.api") == []
    assert edges("service.usecases", "service.runtime") == []
    assert edges("service.usecases", "service.schemas") == []


def test_nothing_below_the_routes_imports_a_body_or_a_route() -> None:
    for lower in ("service.db", "service.jobs", "service.serving", "service.ml", "service.spec"):
        assert edges(lower, "service.api") == [], lower
        assert edges(lower, "service.schemas") == [], lower
        assert edges(lower, "service.usecases") == [], lower


def test_orm_rows_never_leave_the_database_package() -> None:
    imported_elsewhere = [
        edge for edge in edges("service", "service.db.models") if not edge.startswith("service.db.")
    ]
    assert imported_elsewhere == []


def test_only_ml_and_the_training_process_import_tensorflow() -> None:
    offenders = sorted(
        f"{module} -> {imported}"
        for module, imports in service_modules().items()
        if not any(within(module, home) for home in TENSORFLOW_HOMES)
        for imported in imports
        if imported.split(".")[0] in TENSORFLOW
    )
    assert offenders == []


def test_the_domain_modules_import_no_layer_above_them() -> None:
    """domain/, errors.py, mnist.py and spec/ are what every layer shares."""
    above = ("service.api", "service.usecases", "service.db", "service.jobs", "service.worker")
    for base in ("service.domain", "service.errors", "service.mnist", "service.spec"):
        for layer in above:
            assert edges(base, layer) == [], (base, layer)
