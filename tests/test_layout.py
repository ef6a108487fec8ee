"""Test modules share code through tests/helpers.py and tests/factories.py (and the browser
tests through tests/browser.py), never each other."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
SHARED = {"tests", "tests.helpers", "tests.factories", "tests.tcp_proxy", "tests.browser"}


def imported_test_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "tests":  # `from tests import factories`
                found.update(f"tests.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.add("." * node.level + (node.module or ""))  # relative: always another module
    return {name for name in found if name.startswith(("tests", "."))}


def test_no_test_module_imports_another() -> None:
    offenders = {
        str(path.relative_to(TESTS)): sorted(imported - SHARED)
        for path in sorted(TESTS.rglob("*.py"))
        if (imported := imported_test_modules(path)) - SHARED
    }
    assert not offenders, f"move what these share into tests/helpers.py: {offenders}"
