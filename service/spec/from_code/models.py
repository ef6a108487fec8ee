"""The reader's models: `Sequential`, `add`, `compile` and `fit` on a model variable, mapped to
the spec's layers, compile (loss, optimizer, metrics) and fit (epochs, sizes, callbacks)."""

from __future__ import annotations

import ast
from typing import Any

from service.spec.from_code.results import ReadModel, Skipped
from service.spec.from_code.values import Deferred, ValueReader
from service.spec.from_code.vocabulary import (
    CALLBACKS,
    HARMLESS,
    LAYER_HINT,
    MAX_DEPTH,
    SEEDS,
    SEQUENTIAL,
    SIDE_CALLBACKS,
)
from service.spec.layers import LAYER_TYPES


class ModelReader(ValueReader):
    """The calls on a model variable, each mapped to its part of the spec."""

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
                if not isinstance(found, Deferred):
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
