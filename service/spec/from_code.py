"""Keras code read, never run: a notebook's `Sequential`, `compile` and `fit` as spec JSON.

The source is parsed with `ast` and walked; nothing in it is imported, evaluated or executed.
A value is taken only where it is written out (a literal, simple arithmetic on numbers, a name
assigned such a value earlier, a call of a Keras class the spec knows); anything else (a
custom layer, a lambda, a value computed at run time) is refused with its line and column and
what would work. What is not about the model (`model.summary()`, plotting, `evaluate`) is
skipped and listed. Cells of a notebook are read in order, sharing their names, as a kernel
would run them.

service/export/keras_code.py writes the other way; tests/spec/test_from_code.py holds the two
to a round trip.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.spec.layers import ACTIVATIONS, INITIALIZERS, LAYER_TYPES
from service.spec.optimizers import OPTIMIZER_TYPES
from service.spec.schedules import SCHEDULE_TYPES

# Keras's positional parameters, in its order, for each class the spec knows (Keras 3's
# signatures); the exporter writes a prefix of these positionally.
POSITIONAL: dict[str, tuple[str, ...]] = {
    "Input": ("shape",),
    "InputLayer": ("shape",),
    "Flatten": ("data_format",),
    "Dense": ("units", "activation", "use_bias", "kernel_initializer"),
    "Activation": ("activation",),
    "LeakyReLU": ("negative_slope",),
    "PReLU": ("alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes"),
    "ELU": ("alpha",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "BatchNormalization": ("axis", "momentum", "epsilon"),
    "Dropout": ("rate",),
    "AlphaDropout": ("rate",),
    "Conv2D": ("filters", "kernel_size", "strides", "padding"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "Reshape": ("target_shape",),
    "SGD": ("learning_rate", "momentum", "nesterov"),
    "Adagrad": ("learning_rate", "initial_accumulator_value", "epsilon"),
    "RMSprop": ("learning_rate", "rho", "momentum", "epsilon", "centered"),
    "Adam": ("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"),
    "Adamax": ("learning_rate", "beta_1", "beta_2", "epsilon"),
    "Nadam": ("learning_rate", "beta_1", "beta_2", "epsilon"),
    "ExponentialDecay": ("initial_learning_rate", "decay_steps", "decay_rate", "staircase"),
    "InverseTimeDecay": ("initial_learning_rate", "decay_steps", "decay_rate", "staircase"),
    "CosineDecay": ("initial_learning_rate", "decay_steps", "alpha"),
    "PiecewiseConstantDecay": ("boundaries", "values"),
    "EarlyStopping": ("monitor", "min_delta", "patience"),
    "ReduceLROnPlateau": ("monitor", "factor", "patience"),
    "l1": ("l1",),
    "l2": ("l2",),
    "l1_l2": ("l1", "l2"),
    "max_norm": ("max_value", "axis"),
    "unit_norm": ("axis",),
    "non_neg": (),
}
# Keras's arguments that change nothing the service trains: read, skipped and listed.
HARMLESS = {
    "name": "the service names layers itself",
    "verbose": "the service reports progress itself",
}
# Keras's default for each argument it would be harmless to leave out, when written anyway.
DEFAULTS_TAKEN = {
    "shuffle": True,
    "mode": "auto",
    "data_format": "channels_last",
    "dtype": "float32",
}
# Keras's class name -> the spec's regularizer or constraint type (its string identifier).
REGULARIZERS = {"l1": "l1", "l2": "l2", "l1_l2": "l1_l2", "L1": "l1", "L2": "l2", "L1L2": "l1_l2"}
CONSTRAINTS = {
    "max_norm": "max_norm",
    "MaxNorm": "max_norm",
    "non_neg": "non_neg",
    "NonNeg": "non_neg",
    "unit_norm": "unit_norm",
    "UnitNorm": "unit_norm",
}
CALLBACKS = {"EarlyStopping": "early_stopping", "ReduceLROnPlateau": "reduce_lr_on_plateau"}
# Callbacks about files and logs, not about training: skipped and listed.
SIDE_CALLBACKS = ("ModelCheckpoint", "TensorBoard", "CSVLogger", "ProgbarLogger", "History")
SEQUENTIAL = ("keras.Sequential", "keras.models.Sequential")
FUNCTIONAL = ("keras.Model", "keras.models.Model")
SEEDS = ("keras.utils.set_random_seed", "tensorflow.random.set_seed")
# Functions and modules that run code or reach the system: refused wherever they are written.
RUNS_CODE = frozenset(
    {
        "__import__",
        "eval",
        "exec",
        "compile",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "__builtins__",
    }
)
SYSTEM_MODULES = frozenset(
    {
        "subprocess",
        "ctypes",
        "pickle",
        "marshal",
        "importlib",
        "builtins",
        "pty",
        "shutil",
        "socket",
        "multiprocessing",
        "runpy",
        "code",
    }
)
OS_CALLS = re.compile(r"^os\.(system|popen|exec\w*|spawn\w*|fork\w*|kill\w*|remove|unlink|rmdir)$")
MAX_DEPTH = 32
MAX_EXPONENT = 1000
# Beyond any setting, and short enough to print (Python refuses ints of over 4,300 digits).
MAX_INTEGER = 2**53
# The kinds of value a Keras call gives, for the messages that say what fits where.
LAYER_HINT = (
    "use one of Keras's layers the service builds: " + ", ".join(LAYER_TYPES) + " (as "
    'keras.layers.Dense(300, activation="relu"))'
)


@dataclass(frozen=True)
class Where:
    """A place in the source: 1-based line and column, and the notebook cell (1-based)."""

    line: int
    column: int
    cell: int | None = None

    def __str__(self) -> str:
        place = f"line {self.line}, column {self.column}"
        return f"cell {self.cell}, {place}" if self.cell is not None else place

    def as_dict(self) -> dict[str, int]:
        found = {"line": self.line, "column": self.column}
        return found if self.cell is None else {"cell": self.cell, **found}


class CodeRefused(ValueError):
    """The source says something the spec cannot hold; the message says what would work."""

    def __init__(self, where: Where, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.reason = message


@dataclass(frozen=True)
class Skipped:
    """A statement or argument read and left out, and why."""

    where: Where
    code: str
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.where.as_dict(), "code": self.code, "why": self.why}


@dataclass
class ReadModel:
    """One `Sequential` with what its `add`, `compile` and `fit` calls said.

    `places` maps a path in the spec (("layers", 2, "units")) to where the source wrote it,
    so that the spec's own refusals can name a line and column too.
    """

    variable: str
    where: Where
    name: str | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)
    compile: dict[str, Any] | None = None
    fit: dict[str, Any] | None = None
    places: dict[tuple[str | int, ...], Where] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def spec(self) -> dict[str, Any]:
        """The spec as JSON (before the spec's own validation)."""
        spec: dict[str, Any] = {"layers": self.layers, "compile": self.compile or {}}
        if self.fit is not None:
            spec["fit"] = self.fit
        return spec

    def where_is(self, loc: Iterable[str | int]) -> Where:
        """The closest place the source wrote `loc` (or its nearest parent)."""
        path = tuple(loc)
        while path:
            if path in self.places:
                return self.places[path]
            path = path[:-1]
        return self.where


@dataclass
class Reading:
    models: list[ReadModel]
    skipped: list[Skipped]


@dataclass(frozen=True)
class _Deferred:
    """A name's value that is an expression read only where it is used (a Keras call)."""

    node: ast.expr
    cell: int | None


@dataclass(frozen=True)
class _RunTime:
    """A name given a value that only running the code would tell."""

    where: Where
    code: str


_Value = Any


class _Reader:
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.names: dict[str, _Value | _Deferred | _RunTime] = {}
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
                self.names[name] = _RunTime(self.at(node), f"class {name}")
                self._outside_model(node, "a class definition")
            case ast.FunctionDef(name=name) | ast.AsyncFunctionDef(name=name):
                self.custom[name] = self.at(node)
                self.names[name] = _RunTime(self.at(node), f"def {name}")
                self._outside_model(node, "a function definition")
            case _:
                self._outside_model(node, "not about the model")
                for target in _assigned_names(node):
                    self.names[target] = _RunTime(self.at(node), self.code(node))

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
            self.names[name] = _RunTime(self.at(value), self.code(value))
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
                _Deferred(value, self.cell)
                if isinstance(value, ast.Call | ast.Subscript | ast.BinOp | ast.Attribute)
                else _RunTime(self.at(value), self.code(value))
            )

    def _unpack(self, targets: list[ast.expr], value: ast.expr) -> None:
        values = value.elts if isinstance(value, ast.Tuple) else None
        for index, target in enumerate(targets):
            if not isinstance(target, ast.Name):
                continue
            if values is not None and len(values) == len(targets):
                self._assign(target.id, values[index])
            else:
                self.names[target.id] = _RunTime(self.at(value), self.code(value))

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

    def _is_sequential(self, func: ast.expr) -> bool:
        return self.dotted(func) in (*SEQUENTIAL, "Sequential")

    def _model_method(self, func: ast.expr) -> tuple[ReadModel, str] | None:
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in self.open
        ):
            return self.open[func.value.id], func.attr
        return None

    # Models --------------------------------------------------------------------------------
    def _new_model(self, variable: str, call: ast.Call) -> None:
        if variable in self.open:
            self._close(self.open.pop(variable))
        model = ReadModel(variable, self.at(call))
        self.open[variable] = model
        arguments = self._arguments(call, ("layers", "trainable", "name"), what="Sequential")
        if "name" in arguments:
            name = self.value(arguments.pop("name"))
            model.name = name if isinstance(name, str) else None
        if "layers" in arguments:
            listed = arguments.pop("layers")
            if not isinstance(listed, ast.List | ast.Tuple):
                listed = self._resolved(listed)
            if not isinstance(listed, ast.List | ast.Tuple):
                raise self.refuse(
                    listed, "give Sequential its layers as a list written out: [keras.layers...]"
                )
            for layer in listed.elts:
                self._add(model, layer)
        for name, node in arguments.items():
            raise self.refuse(node, f"Sequential's {name!r} is not something the service sets")

    def _close(self, model: ReadModel) -> None:
        if model.compile is not None:
            self.models.append(model)
        elif model.layers:
            self.skipped.append(
                Skipped(model.where, f"{model.variable} = Sequential(...)", "never compiled")
            )

    def _call(self, call: ast.Call) -> None:
        method = self._model_method(call.func)
        if method is None:
            dotted = self.dotted(call.func)
            if dotted in SEEDS and call.args:
                seed = self.value(call.args[0])
                if isinstance(seed, int) and not isinstance(seed, bool):
                    self.seed = seed
                    return
            self.skip(call, "not about the model")
            return
        model, name = method
        match name:
            case "add":
                self._add_call(model, call)
            case "pop":
                if model.layers:
                    model.layers.pop()
            case "compile":
                self._compile(model, call)
            case "fit":
                self._fit(model, call)
            case "summary" | "evaluate" | "predict" | "save" | "save_weights" | "count_params":
                self.skip(call, f"model.{name}() does not change what is trained")
            case _:
                raise self.refuse(
                    call,
                    f"model.{name}(...) changes the model in a way the service cannot read; "
                    "build it with Sequential, add, compile and fit only",
                )

    def _add_call(self, model: ReadModel, call: ast.Call) -> None:
        arguments = self._arguments(call, ("layer",), what="model.add")
        if "layer" not in arguments:
            raise self.refuse(call, "model.add needs a layer: model.add(keras.layers.Dense(10))")
        self._add(model, arguments["layer"])

    def _add(self, model: ReadModel, node: ast.expr) -> None:
        index = len(model.layers)
        call = self._resolved(node)
        if not isinstance(call, ast.Call):
            raise self.refuse(node, f"{self.code(node)} is not a layer call; {LAYER_HINT}")
        dotted = self.dotted(call.func) or ""
        kind = dotted.rsplit(".", 1)[-1]
        # A bare `Dense(...)` may have its import in another cell.
        keras_layer = self._is_keras(dotted, "layers") or dotted in ("keras.Input", "Input")
        if kind in self.custom or not (keras_layer or dotted in (*LAYER_TYPES, "InputLayer")):
            defined = f" (defined at {self.custom[kind]})" if kind in self.custom else ""
            raise self.refuse(
                call,
                f"{self.code(call.func)} is not a Keras layer{defined}: the service builds "
                f"only Keras's own layers; {LAYER_HINT}",
            )
        if kind == "InputLayer":
            kind = "Input"
        if kind not in LAYER_TYPES:
            raise self.refuse(call, f"the service does not build {kind!r} layers; {LAYER_HINT}")
        layer = self._keras_object(call, kind, model, ("layers", index))
        if kind == "Input" and "shape" not in layer and "input_shape" in layer:
            layer["shape"] = layer.pop("input_shape")
        if kind == "Input" and "batch_shape" in layer:
            batch_shape = layer.pop("batch_shape")
            layer["shape"] = batch_shape[1:] if isinstance(batch_shape, list) else batch_shape
        if layer == {"type": "Input", "shape": [28, 28]} and not model.layers:
            # What the service feeds anyway: the spec is the same without it.
            self.skip(call, "the service feeds MNIST's 28x28 images itself")
            return
        model.layers.append(layer)

    def _compile(self, model: ReadModel, call: ast.Call) -> None:
        arguments = self._arguments(call, ("optimizer", "loss", "metrics"), what="compile")
        compiled: dict[str, Any] = {}
        for name, node in arguments.items():
            where = self.at(node)
            if name in ("run_eagerly", "jit_compile", "steps_per_execution", "auto_scale_loss"):
                self.skip(node, "compile: only speed; the service sets it", argument=name)
                continue
            if name not in ("optimizer", "loss", "metrics"):
                raise self.refuse(
                    node, f"compile's {name!r} is not something the service sets; leave it out"
                )
            value = self.value(node, context=name)
            model.places[("compile", name)] = where
            compiled[name] = value
        if "optimizer" not in compiled:
            compiled["optimizer"] = "rmsprop"
            model.notes.append("no optimizer given: Keras's default, RMSprop")
        model.compile = compiled

    def _fit(self, model: ReadModel, call: ast.Call) -> None:
        if model.compile is None:
            raise self.refuse(call, "fit before compile: call model.compile(...) first")
        if model.fit is not None:
            raise self.refuse(
                call,
                f"{model.variable}.fit is called a second time; the service trains a model "
                "once: give one fit with all the epochs",
            )
        arguments = self._arguments(
            call, ("x", "y", "batch_size", "epochs", "verbose", "callbacks"), what="fit"
        )
        fit: dict[str, Any] = {}
        for name, node in arguments.items():
            where = self.at(node)
            if name in ("x", "y"):
                if name == "x":
                    size = self._leading_slice(node)
                    if size is not None:
                        fit["train_size"] = size
                        model.places[("fit", "train_size")] = where
                continue
            if name in ("verbose", "workers", "use_multiprocessing", "max_queue_size"):
                self.skip(node, f"fit: {HARMLESS.get(name, 'the service runs fit')}", argument=name)
                continue
            if name == "shuffle" and self._literal_or(node) is True:
                continue
            if name == "validation_data":
                self._validation_data(model, node, fit)
                continue
            if name == "callbacks":
                self._callbacks(model, node, fit)
                continue
            if name not in ("epochs", "batch_size", "validation_split"):
                raise self.refuse(
                    node,
                    f"fit's {name!r} is not something the service sets; it takes epochs, "
                    "batch_size, validation_data, validation_split and callbacks "
                    "(EarlyStopping, ReduceLROnPlateau)",
                )
            model.places[("fit", name)] = where
            fit[name] = self.value(node)
        if "validation_data" not in arguments and "validation_split" not in arguments:
            fit["validation_size"] = 0
            model.notes.append("fit has no validation_data: nothing is held out to validate")
        if self.seed is not None:
            fit["seed"] = self.seed
        model.places.setdefault(("fit",), self.at(call))
        model.fit = fit

    def _validation_data(self, model: ReadModel, node: ast.expr, fit: dict[str, Any]) -> None:
        model.places[("fit", "validation_size")] = self.at(node)
        if not isinstance(node, ast.Tuple | ast.List) or len(node.elts) != 2:
            raise self.refuse(
                node,
                "validation_data names the notebook's split, (X_valid, y_valid); or give "
                "validation_split=0.1",
            )
        size = self._leading_slice(node.elts[0])
        if size is not None:
            fit["validation_size"] = size
        else:
            model.notes.append(
                "validation_data: the first 5,000 training images are held out (the "
                "notebook's X_valid)"
            )

    def _leading_slice(self, node: ast.expr) -> int | None:
        """N for `x[:N]` (through names and arithmetic like `/ 255.`), else None."""
        for _ in range(MAX_DEPTH):
            if isinstance(node, ast.Name):
                found = self.names.get(node.id)
                if not isinstance(found, _Deferred):
                    return None
                node = found.node
            elif isinstance(node, ast.BinOp):
                node = node.left
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
                lower, upper = node.slice.lower, node.slice.upper
                start = self._literal_or(lower) if lower is not None else 0
                end = self._literal_or(upper) if upper is not None else None
                if isinstance(start, int) and isinstance(end, int) and end > start:
                    return end - start
                return None
            else:
                return None
        return None

    def _callbacks(self, model: ReadModel, node: ast.expr, fit: dict[str, Any]) -> None:
        listed = self._resolved(node)
        if not isinstance(listed, ast.List | ast.Tuple):
            raise self.refuse(
                node, "give callbacks as a list: [keras.callbacks.EarlyStopping(patience=5)]"
            )
        for item in listed.elts:
            call = self._resolved(item)
            dotted = self.dotted(call.func) if isinstance(call, ast.Call) else None
            kind = (dotted or "").rsplit(".", 1)[-1]
            if isinstance(call, ast.Call) and kind in SIDE_CALLBACKS:
                self.skip(call, f"{kind} writes files or logs; the service keeps the history")
                continue
            if not isinstance(call, ast.Call) or kind not in CALLBACKS:
                raise self.refuse(
                    item,
                    f"{self.code(item)} is not a callback the service runs; it runs "
                    "keras.callbacks.EarlyStopping and keras.callbacks.ReduceLROnPlateau",
                )
            key = CALLBACKS[kind]
            model.places[("fit", key)] = self.at(call)
            callback = self._keras_object(call, kind, model, ("fit", key))
            callback.pop("type")
            fit[key] = callback

    # Values --------------------------------------------------------------------------------
    def _resolved(self, node: ast.expr) -> ast.expr:
        """A name's assigned expression (a layer or a list of them kept for later use)."""
        for _ in range(MAX_DEPTH):
            if not isinstance(node, ast.Name) or node.id in self.open:
                return node
            found = self.names.get(node.id)
            if isinstance(found, _Deferred):
                node = found.node
            elif isinstance(found, _RunTime):
                raise self.refuse(node, self._run_time(node.id, found))
            else:
                return node
        raise self.refuse(node, "names refer to each other too deeply")

    def _run_time(self, name: str, found: _RunTime) -> str:
        return (
            f"{name!r} is given its value at run time ({found.code} at {found.where}); write "
            "the value out, or assign a literal to it (n_hidden = 300)"
        )

    def _literal_or(self, node: ast.expr) -> Any:
        try:
            return self.value(node)
        except CodeRefused:
            return None

    def value(self, node: ast.expr, *, context: str = "", depth: int = 0) -> _Value:
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

    def _name(self, node: ast.expr, name: str, context: str, depth: int) -> _Value:
        found = self.names.get(name)
        if isinstance(found, _Deferred):
            cell, self.cell = self.cell, found.cell
            try:
                return self.value(found.node, context=context, depth=depth + 1)
            finally:
                self.cell = cell
        if isinstance(found, _RunTime):
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

    def _attribute(self, node: ast.expr, context: str) -> _Value:
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

    def _object(self, call: ast.Call, context: str, depth: int) -> _Value:
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


# A pasted cell may use these names without its imports: the notebooks' usual spellings.
_DEFAULT_ALIASES = {"tf": "tensorflow", "keras": "keras"}


def snake_case(name: str) -> str:
    """`HeNormal` as Keras's string identifier, `he_normal`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


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


def float32_shortest(value: float) -> float:
    """A float32 read back as its shortest decimal: Keras's config stores 1e-3 as
    0.0010000000474974513; this gives 0.001 back."""
    if math.isfinite(value) and float(np.float32(value)) == value:
        return float(repr(np.float32(value)).removeprefix("np.float32(").removesuffix(")"))
    return value


def read_cells(cells: Iterable[tuple[int | None, str]]) -> Reading:
    """Every model the cells build, compile and fit, in order; what was skipped."""
    reader = _Reader()
    for cell, source in cells:
        reader.read(source, cell)
    return reader.finish()


def read_code(source: str) -> Reading:
    return read_cells([(None, source)])
