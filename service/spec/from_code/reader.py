"""The walk over the code: each cell parsed (never run), what runs code or reaches the system
refused, and each top-level statement taken as an import, an assignment or a call."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from service.spec.from_code.models import ModelReader
from service.spec.from_code.results import CodeRefused, Reading, Skipped, Where
from service.spec.from_code.values import Deferred, RunTime
from service.spec.from_code.vocabulary import FUNCTIONAL, OS_CALLS, RUNS_CODE, SYSTEM_MODULES


class Reader(ModelReader):
    """One reading of cells in order, sharing their names as a kernel would."""

    # Reading -------------------------------------------------------------------------------
    def read(self, source: str, cell: int | None = None) -> None:
        self.cell = cell
        source = self._without_magics(source)
        self.source = source
        try:
            tree = ast.parse(source)
        except SyntaxError as error:
            where = Where(error.lineno or 1, error.offset or 1, cell=cell)
            raise CodeRefused(where, f"not valid Python: {error.msg}") from None
        except (RecursionError, MemoryError, ValueError) as error:
            raise CodeRefused(
                Where(1, 1, cell=cell), f"the source cannot be read ({error}); simplify it"
            ) from None
        self._refuse_running(tree)
        for statement in tree.body:
            self._statement(statement)

    def _without_magics(self, source: str) -> str:
        """IPython's `%magic` and `!shell` lines blanked (kept as lines, so that the line
        numbers stay the cell's): never run, listed as skipped."""
        lines = source.splitlines()
        for number, line in enumerate(lines, start=1):
            stripped = line.lstrip()
            if stripped.startswith(("%", "!")):
                where = Where(number, len(line) - len(stripped) + 1, cell=self.cell)
                self.skipped.append(
                    Skipped(where, stripped[:80], "IPython magic or shell command: never run")
                )
                lines[number - 1] = ""
        return "\n".join(lines)

    def finish(self) -> Reading:
        for model in self.open.values():
            self._close(model)
        self.open.clear()
        return Reading(self.models, self.skipped)

    def _refuse_running(self, tree: ast.AST) -> None:
        """Refuse what tries to run code or reach the system, even where it would be skipped:
        the service never runs it, and says so rather than seem to."""
        why = "the service reads Keras code and never runs it; remove it"
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in RUNS_CODE:
                raise self.refuse(node, f"{node.id!r} runs code: {why}")
            if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
                raise self.refuse(
                    node, f"the attribute {node.attr!r} reaches Python's internals: {why}"
                )
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [alias.name for alias in node.names]
                if isinstance(node, ast.ImportFrom):
                    modules = [node.module or ""]
                for module in modules:
                    if module.split(".")[0] in SYSTEM_MODULES:
                        raise self.refuse(node, f"importing {module!r} reaches the system: {why}")
            if isinstance(node, ast.Call):
                dotted = self.dotted(node.func)
                if dotted is not None and OS_CALLS.match(dotted):
                    raise self.refuse(node, f"{dotted}() reaches the system: {why}")

    # Statements ----------------------------------------------------------------------------
    def _statement(self, node: ast.stmt) -> None:
        match node:
            case ast.Import() | ast.ImportFrom():
                self._import(node)
            case ast.Assign(targets=[ast.Name(id=name)], value=value):
                self._assign(name, value)
            case ast.Assign(targets=[ast.Tuple(elts=targets)], value=value):
                self._unpack(targets, value)
            case ast.AnnAssign(target=ast.Name(id=name), value=value) if value is not None:
                self._assign(name, value)
            case ast.Expr(value=ast.Call() as call):
                self._call(call)
            case ast.Expr(value=ast.Constant()):
                pass  # a docstring or a bare string
            case ast.ClassDef(name=name):
                self.custom[name] = self.at(node)
                self.names[name] = RunTime(self.at(node), f"class {name}")
                self._outside_model(node, "a class definition")
            case ast.FunctionDef(name=name) | ast.AsyncFunctionDef(name=name):
                self.custom[name] = self.at(node)
                self.names[name] = RunTime(self.at(node), f"def {name}")
                self._outside_model(node, "a function definition")
            case _:
                self._outside_model(node, "not about the model")
                for target in _assigned_names(node):
                    self.names[target] = RunTime(self.at(node), self.code(node))

    def _outside_model(self, node: ast.stmt, why: str) -> None:
        """Skip a statement, unless it builds a model: a loop or branch around `model.add`
        holds what only running it would tell."""
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call) and (
                self._is_sequential(inner.func) or self._model_method(inner.func) is not None
            ):
                _, method = self._model_method(inner.func) or (None, "Sequential")
                if method in ("summary", "evaluate", "predict", "save", "count_params"):
                    continue
                raise self.refuse(
                    inner,
                    f"{method}() inside {type(node).__name__.lower()} ({self.code(node)}): the "
                    "service reads the model without running the code, so a loop or a branch "
                    "cannot build it; write each layer and call out, one after the other, at "
                    "the top level of the cell",
                )
        self.skip(node, why)

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is not None:
                    self.aliases[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    self.aliases[head] = head
            return
        module = node.module or ""
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            self.names.pop(alias.asname or alias.name, None)

    def _assign(self, name: str, value: ast.expr) -> None:
        if isinstance(value, ast.Call) and self._is_sequential(value.func):
            self._new_model(name, value)
            return
        if isinstance(value, ast.Call) and self._model_method(value.func) is not None:
            self._call(value)
            self.names[name] = RunTime(self.at(value), self.code(value))
            return
        if name in self.open:
            self._close(self.open.pop(name))
        if isinstance(value, ast.Call) and self.dotted(value.func) in FUNCTIONAL:
            raise self.refuse(
                value,
                "the service trains Sequential models; write the net as "
                "keras.Sequential([...]) with its layers in order",
            )
        try:
            self.names[name] = self.value(value, depth=0)
        except CodeRefused:
            self.names[name] = (
                Deferred(value, self.cell)
                if isinstance(value, ast.Call | ast.Subscript | ast.BinOp | ast.Attribute)
                else RunTime(self.at(value), self.code(value))
            )

    def _unpack(self, targets: list[ast.expr], value: ast.expr) -> None:
        values = value.elts if isinstance(value, ast.Tuple) else None
        for index, target in enumerate(targets):
            if not isinstance(target, ast.Name):
                continue
            if values is not None and len(values) == len(targets):
                self._assign(target.id, values[index])
            else:
                self.names[target.id] = RunTime(self.at(value), self.code(value))


def _assigned_names(node: ast.stmt) -> list[str]:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    elif isinstance(node, ast.For | ast.With):
        return [
            n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        ]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def read_cells(cells: Iterable[tuple[int | None, str]]) -> Reading:
    """Every model the cells build, compile and fit, in order; what was skipped."""
    reader = Reader()
    for cell, source in cells:
        reader.read(source, cell)
    return reader.finish()


def read_code(source: str) -> Reading:
    return read_cells([(None, source)])
