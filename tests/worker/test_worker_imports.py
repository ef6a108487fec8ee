"""The worker's process boundary, kept by its imports.

The supervisor's side (the worker process) and the training process's side meet in
protocol.py: neither imports the other's modules, and no two worker modules import each other,
directly or around a cycle. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

WORKER = Path(__file__).resolve().parents[2] / "service" / "worker"
SUPERVISOR_SIDE = {"consumer", "supervisor", "policy", "host"}
TRAINING_SIDE = {"training", "serve", "attempt", "context", "checkpoints", "tensorflow_setup"}


def worker_imports() -> dict[str, set[str]]:
    """Each worker module: the worker modules it imports."""
    graph: dict[str, set[str]] = {}
    for path in WORKER.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "service.worker":  # `from service.worker import attempt`
                    found.update(alias.name for alias in node.names)
                elif node.module.startswith("service.worker."):
                    found.add(node.module.removeprefix("service.worker."))
            elif isinstance(node, ast.Import):
                found.update(
                    alias.name.removeprefix("service.worker.")
                    for alias in node.names
                    if alias.name.startswith("service.worker.")
                )
        graph[path.stem] = found
    return graph


def test_the_sides_meet_only_in_what_both_share() -> None:
    graph = worker_imports()
    assert graph.keys() >= SUPERVISOR_SIDE | TRAINING_SIDE
    crossing = {
        module: sorted(graph[module] & other)
        for side, other in ((SUPERVISOR_SIDE, TRAINING_SIDE), (TRAINING_SIDE, SUPERVISOR_SIDE))
        for module in side
        if graph[module] & other
    }
    assert crossing == {}


def test_no_import_cycle_among_the_worker_modules() -> None:
    graph = worker_imports()

    def cycle_from(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        for imported in sorted(graph.get(module, ())):
            if found := cycle_from(imported, [*path, module]):
                return found
        return None

    cycles = [found for module in sorted(graph) if (found := cycle_from(module, []))]
    assert cycles == []
