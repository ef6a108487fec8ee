"""The reader's base: its state (names, aliases, open models), places and messages, and what a
value written in the code says as spec JSON (literals, arithmetic, names assigned earlier, the
Keras objects the spec knows), refused where only running the code would tell."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from service.spec.from_code.results import CodeRefused, ReadModel, Skipped, Where
from service.spec.from_code.vocabulary import (
    CONSTRAINTS,
    DEFAULTS_TAKEN,
    HARMLESS,
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_INTEGER,
    POSITIONAL,
    REGULARIZERS,
    snake_case,
)
from service.spec.layers import ACTIVATIONS, INITIALIZERS
from service.spec.optimizers import OPTIMIZER_TYPES
from service.spec.schedules import SCHEDULE_TYPES

# A pasted cell may use these names without its imports: the notebooks' usual spellings.
_DEFAULT_ALIASES = {"tf": "tensorflow", "keras": "keras"}


@dataclass(frozen=True)
class Deferred:
    """A name's value that is an expression read only where it is used (a Keras call)."""

    node: ast.expr
    cell: int | None


@dataclass(frozen=True)
class RunTime:
    """A name given a value that only running the code would tell."""

    where: Where
    code: str


Value = Any


class ValueReader:
    """The state one reading shares across its cells, and the values it reads; `ModelReader`
    and `Reader` build on it."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.names: dict[str, Value | Deferred | RunTime] = {}
        self.open: dict[str, ReadModel] = {}
        self.models: list[ReadModel] = []
        self.skipped: list[Skipped] = []
        self.custom: dict[str, Where] = {}
        self.seed: int | None = None
        self.cell: int | None = None
        self.source = ""

    # Places and messages -----------------------------------------------------------------
    def at(self, node: ast.AST) -> Where:
        return Where(getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1, cell=self.cell)

    def refuse(self, node: ast.AST, message: str) -> CodeRefused:
        return CodeRefused(self.at(node), message)

    def code(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.source, node) or ast.unparse(node)
        first = text.strip().splitlines()[0] if text.strip() else ""
        return first if len(first) <= 80 else first[:77] + "..."

    def skip(self, node: ast.AST, why: str, *, argument: str | None = None) -> None:
        code = self.code(node) if argument is None else f"{argument}={self.code(node)}"
        self.skipped.append(Skipped(self.at(node), code, why))

    # Names ---------------------------------------------------------------------------------
    def dotted(self, node: ast.expr) -> str | None:
        """`tf.keras.layers.Dense` as Keras's own path (`keras.layers.Dense`), imports and
        aliases resolved; None for anything but a dotted name."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        head = self.aliases.get(node.id, _DEFAULT_ALIASES.get(node.id, node.id))
        path = ".".join([head, *reversed(parts)])
        for prefix in ("tensorflow.keras.", "tf.keras.", "tensorflow.python.keras."):
            if path.startswith(prefix):
                return "keras." + path.removeprefix(prefix)
        if path.startswith("keras.src."):
            return "keras." + path.removeprefix("keras.src.").split(".", 1)[-1]
        return path

    # Values --------------------------------------------------------------------------------
    def _resolved(self, node: ast.expr) -> ast.expr:
        """A name's assigned expression (a layer or a list of them kept for later use)."""
        for _ in range(MAX_DEPTH):
            if not isinstance(node, ast.Name) or node.id in self.open:
                return node
            found = self.names.get(node.id)
            if isinstance(found, Deferred):
                node = found.node
            elif isinstance(found, RunTime):
                raise self.refuse(node, self._run_time(node.id, found))
            else:
                return node
        raise self.refuse(node, "names refer to each other too deeply")

    def _run_time(self, name: str, found: RunTime) -> str:
        return (
            f"{name!r} is given its value at run time ({found.code} at {found.where}); write "
            "the value out, or assign a literal to it (n_hidden = 300)"
        )

    def _literal_or(self, node: ast.expr) -> Any:
        try:
            return self.value(node)
        except CodeRefused:
            return None

    def value(self, node: ast.expr, *, context: str = "", depth: int = 0) -> Value:
        """What an argument says, as spec JSON; refused when only running it would tell."""
        if depth > MAX_DEPTH:
            raise self.refuse(node, "the value nests too deeply; write it out")
        match node:
            case ast.Constant(value=value):
                if isinstance(value, int) and abs(value) > MAX_INTEGER:
                    raise self.refuse(node, f"a whole number over {MAX_INTEGER:,} is no setting")
                if value is None or isinstance(value, bool | int | float | str):
                    return value
                raise self.refuse(node, f"{value!r} is not a value Keras takes here")
            case ast.List(elts=items) | ast.Tuple(elts=items):
                return [self.value(item, context=context, depth=depth + 1) for item in items]
            case ast.Dict(keys=keys, values=values):
                found: dict[str, Any] = {}
                for key, item in zip(keys, values, strict=True):
                    if key is None:
                        raise self.refuse(item, "write the dict out, without **")
                    name = self.value(key, depth=depth + 1)
                    if not isinstance(name, str):
                        raise self.refuse(key, "a dict's keys are strings here")
                    found[name] = self.value(item, context=context, depth=depth + 1)
                return found
            case ast.UnaryOp(op=ast.USub() | ast.UAdd() as op, operand=operand):
                number = self._number(operand, depth)
                return -number if isinstance(op, ast.USub) else number
            case ast.BinOp(left=left, op=op, right=right):
                return self._arithmetic(
                    node, op, self._number(left, depth), self._number(right, depth)
                )
            case ast.Name(id=name):
                return self._name(node, name, context, depth)
            case ast.Attribute():
                return self._attribute(node, context)
            case ast.Call():
                return self._object(node, context, depth)
            case ast.Lambda():
                raise self.refuse(
                    node,
                    "a lambda is code the service would have to run; give a Keras name instead "
                    f"(an activation: {', '.join(ACTIVATIONS[:6])}, ...)",
                )
        raise self.refuse(
            node,
            f"{self.code(node)} is computed at run time; write the value out (a number, a "
            "string, a list) or a name assigned one earlier",
        )

    def _number(self, node: ast.expr, depth: int) -> int | float:
        number = self.value(node, depth=depth + 1)
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise self.refuse(node, "arithmetic here is on numbers only; write the value out")
        return number

    def _arithmetic(self, node: ast.expr, op: ast.operator, a: float, b: float) -> int | float:
        try:
            match op:
                case ast.Add():
                    return a + b
                case ast.Sub():
                    return a - b
                case ast.Mult():
                    return a * b
                case ast.Div():
                    return a / b
                case ast.FloorDiv():
                    return a // b
                case ast.Mod():
                    return a % b
                case ast.Pow() if abs(b) <= MAX_EXPONENT and abs(a) <= 1e6:
                    result: int | float = a**b
                    if isinstance(result, complex) or abs(result) > MAX_INTEGER:
                        raise ArithmeticError("out of range")
                    return result
        except (ArithmeticError, ValueError):
            pass
        raise self.refuse(node, f"{self.code(node)} cannot be worked out here; write the value")

    def _name(self, node: ast.expr, name: str, context: str, depth: int) -> Value:
        found = self.names.get(name)
        if isinstance(found, Deferred):
            cell, self.cell = self.cell, found.cell
            try:
                return self.value(found.node, context=context, depth=depth + 1)
            finally:
                self.cell = cell
        if isinstance(found, RunTime):
            raise self.refuse(node, self._run_time(name, found))
        if name in self.names:
            return found
        if name in self.open:
            raise self.refuse(node, f"{name!r} is a model; the service takes values here")
        dotted = self.dotted(node) or name
        if dotted != name:
            return self._attribute(node, context)
        raise self.refuse(
            node,
            f"{name!r} is not assigned a value in the code; assign it a literal first "
            f"({name} = ...) or write the value out",
        )

    def _attribute(self, node: ast.expr, context: str) -> Value:
        """A Keras function named, not called: `keras.activations.relu`, `tf.nn.relu`."""
        dotted = self.dotted(node) or ""
        last = dotted.rsplit(".", 1)[-1]
        if (
            self._is_keras(dotted, "activations") or dotted.startswith("tensorflow.nn.")
        ) and last in ACTIVATIONS:
            return last
        if self._is_keras(dotted, "initializers") and last in INITIALIZERS:
            return last
        if self._is_keras(dotted, "losses") and last == "sparse_categorical_crossentropy":
            return last
        if self._is_keras(dotted, "regularizers") and last in REGULARIZERS:
            return {"type": REGULARIZERS[last]}
        raise self.refuse(
            node,
            f"{self.code(node)} is not a value the service can read; write a Keras name as a "
            'string (activation="relu") or a literal',
        )

    def _is_keras(self, dotted: str, module: str) -> bool:
        return dotted.startswith(f"keras.{module}.") or dotted.startswith(f"{module}.")

    def _object(self, call: ast.Call, context: str, depth: int) -> Value:
        """A Keras object written as a call: an optimizer, a schedule, a regularizer, ..."""
        dotted = self.dotted(call.func) or ""
        kind = dotted.rsplit(".", 1)[-1]
        if self._is_keras(dotted, "optimizers.schedules") and kind in SCHEDULE_TYPES:
            return self._keras_object(call, kind, None, (), depth)
        if self._is_keras(dotted, "optimizers") and kind in OPTIMIZER_TYPES:
            return self._keras_object(call, kind, None, (), depth)
        if self._is_keras(dotted, "optimizers.legacy") and kind in OPTIMIZER_TYPES:
            return self._keras_object(call, kind, None, (), depth)
        if self._is_keras(dotted, "regularizers") and kind in REGULARIZERS:
            return self._keras_object(call, REGULARIZERS[kind], None, (), depth)
        if self._is_keras(dotted, "constraints") and kind in CONSTRAINTS:
            return self._keras_object(call, CONSTRAINTS[kind], None, (), depth)
        if self._is_keras(dotted, "initializers"):
            name = snake_case(kind)
            if name in INITIALIZERS and not call.args and not call.keywords:
                return name
        if self._is_keras(dotted, "losses") and kind == "SparseCategoricalCrossentropy":
            arguments = self._arguments(call, ("from_logits",), what=kind)
            if "from_logits" in arguments and self.value(arguments["from_logits"]) is not False:
                raise self.refuse(
                    call,
                    "from_logits=True needs a net without softmax; the service's nets end in "
                    "softmax: leave from_logits out",
                )
            return "sparse_categorical_crossentropy"
        if kind in OPTIMIZER_TYPES and not dotted.startswith("keras"):
            return self._keras_object(call, kind, None, (), depth)
        if dotted == "float" and len(call.args) == 1 and not call.keywords:
            return self._number(call.args[0], depth)
        raise self.refuse(
            call,
            f"{self.code(call.func)}(...) is computed at run time; write the value out, or use "
            "a Keras object the service reads (an optimizer, a learning-rate schedule, a "
            "regularizer, a constraint, an initializer, a loss)",
        )

    def _keras_object(
        self,
        call: ast.Call,
        kind: str,
        model: ReadModel | None,
        path: tuple[str | int, ...],
        depth: int = 0,
    ) -> dict[str, Any]:
        arguments = self._arguments(call, POSITIONAL.get(kind, ()), what=kind)
        found: dict[str, Any] = {"type": kind}
        if model is not None:
            model.places[path] = self.at(call)
        for name, node in arguments.items():
            if name in HARMLESS:
                self.skip(node, f"{kind}'s {name}: {HARMLESS[name]}", argument=name)
                continue
            value = self.value(node, context=name, depth=depth + 1)
            if DEFAULTS_TAKEN.get(name, object()) == value:
                continue
            if model is not None:
                model.places[(*path, name)] = self.at(node)
            found[name] = value
        return found

    def _arguments(
        self, call: ast.Call, positional: tuple[str, ...], *, what: str
    ) -> dict[str, ast.expr]:
        """The call's arguments by Keras's parameter names, each once."""
        found: dict[str, ast.expr] = {}
        for index, node in enumerate(call.args):
            if isinstance(node, ast.Starred):
                raise self.refuse(node, "write the arguments out, without *")
            if index >= len(positional):
                raise self.refuse(
                    node,
                    f"{what} takes at most {len(positional)} arguments by position here; "
                    "name the others (epochs=5)",
                )
            found[positional[index]] = node
        for keyword in call.keywords:
            if keyword.arg is None:
                raise self.refuse(keyword.value, "write the arguments out, without **")
            if keyword.arg in found:
                raise self.refuse(keyword.value, f"{what} is given {keyword.arg!r} twice")
            found[keyword.arg] = keyword.value
        return found
