"""Spec objects as the Keras calls a learner writes: `keras.layers.Dense(300, activation="relu")`.

KERAS_CALLS has one entry per spec `type`: the Keras class, and the arguments a learner writes
positionally. Every other field becomes a keyword argument of the same name (the spec uses
Keras's argument names), left out when it holds its default (the spec's defaults are Keras's).
A nested spec object with a `type` (a learning-rate schedule, a regularizer) becomes a nested
call the same way, so a new spec type needs one entry here and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class KerasCall:
    """How a spec object is written in Keras: `path(positional..., keyword=value...)`."""

    path: str
    positional: tuple[str, ...] = ()


def _calls_in(module: str) -> Callable[..., KerasCall]:
    """`_layer("Dense", "units")` for `keras.layers.Dense`, with `units` written positionally."""

    def call(name: str, *positional: str) -> KerasCall:
        return KerasCall(f"{module}.{name}", positional)

    return call


_layer = _calls_in("keras.layers")
_optimizer = _calls_in("keras.optimizers")
_schedule = _calls_in("keras.optimizers.schedules")
_regularizer = _calls_in("keras.regularizers")
_constraint = _calls_in("keras.constraints")

KERAS_CALLS: dict[str, KerasCall] = {
    # Layers, by their spec `type` (Keras's class name). The script writes keras.Input itself.
    "Input": KerasCall("keras.Input"),
    "Flatten": _layer("Flatten"),
    "Dense": _layer("Dense", "units"),
    "Activation": _layer("Activation", "activation"),
    "LeakyReLU": _layer("LeakyReLU"),
    "PReLU": _layer("PReLU"),
    "ELU": _layer("ELU"),
    "ReLU": _layer("ReLU"),
    "BatchNormalization": _layer("BatchNormalization"),
    "Dropout": _layer("Dropout", "rate"),
    "AlphaDropout": _layer("AlphaDropout", "rate"),
    "Conv2D": _layer("Conv2D", "filters", "kernel_size"),
    "MaxPooling2D": _layer("MaxPooling2D"),
    "Reshape": _layer("Reshape", "target_shape"),
    # Optimizers: keyword arguments only, as the notebook writes SGD(learning_rate=1e-3).
    "SGD": _optimizer("SGD"),
    "Adagrad": _optimizer("Adagrad"),
    "RMSprop": _optimizer("RMSprop"),
    "Adam": _optimizer("Adam"),
    "Adamax": _optimizer("Adamax"),
    "Nadam": _optimizer("Nadam"),
    # Learning-rate schedules, an optimizer's learning_rate.
    "ExponentialDecay": _schedule(
        "ExponentialDecay", "initial_learning_rate", "decay_steps", "decay_rate"
    ),
    "PiecewiseConstantDecay": _schedule("PiecewiseConstantDecay", "boundaries", "values"),
    "InverseTimeDecay": _schedule(
        "InverseTimeDecay", "initial_learning_rate", "decay_steps", "decay_rate"
    ),
    "CosineDecay": _schedule("CosineDecay", "initial_learning_rate", "decay_steps"),
    # A kernel's regularizer and constraint: the spec's type is Keras's string identifier,
    # the call is the class behind it (as service/ml/build.py makes them).
    "l1": _regularizer("L1", "l1"),
    "l2": _regularizer("L2", "l2"),
    "l1_l2": _regularizer("L1L2"),
    "max_norm": _constraint("MaxNorm"),
    "non_neg": _constraint("NonNeg"),
    "unit_norm": _constraint("UnitNorm"),
}
EARLY_STOPPING = KerasCall("keras.callbacks.EarlyStopping")
REDUCE_LR_ON_PLATEAU = KerasCall("keras.callbacks.ReduceLROnPlateau")


class NoKerasCode(LookupError):
    """A spec type without an entry in KERAS_CALLS: a programming error the tests catch."""


def keras_code(spec: BaseModel) -> str:
    """The Keras expression that builds this spec object (a layer, an optimizer, ...)."""
    spec_type = getattr(spec, "type", None)
    call = KERAS_CALLS.get(spec_type) if isinstance(spec_type, str) else None
    if call is None:
        raise NoKerasCode(
            f"no Keras code for spec type {spec_type!r}; add it to KERAS_CALLS in {__name__}"
        )
    return call_code(call, spec)


def call_code(call: KerasCall, spec: BaseModel) -> str:
    """`call.path(...)` with the spec's fields that differ from their defaults."""
    given = _non_default_fields(spec)
    arguments = []
    for name in call.positional:
        if name not in given:
            break  # left at its default: what follows must be named
        arguments.append(literal(given.pop(name)))
    arguments += [f"{name}={literal(value)}" for name, value in given.items()]
    return f"{call.path}({', '.join(arguments)})"


def _non_default_fields(spec: BaseModel) -> dict[str, Any]:
    given = {}
    for name, field in type(spec).model_fields.items():
        if name == "type" or field.exclude:
            continue
        value = getattr(spec, name)
        if not field.is_required() and value == field.get_default(call_default_factory=True):
            continue
        given[name] = value
    return given


def literal(value: Any) -> str:
    """Python source for a spec value: strings in double quotes, nested spec objects as calls."""
    if isinstance(value, BaseModel):
        return keras_code(value)
    if isinstance(value, str):
        return json.dumps(value)  # a valid Python string literal too
    if value is None or isinstance(value, bool | int | float):
        return repr(value)  # floats: the shortest repr that reads back to the same number
    if isinstance(value, list | tuple):
        return f"[{', '.join(literal(item) for item in value)}]"
    if isinstance(value, dict):
        items = ", ".join(f"{literal(key)}: {literal(item)}" for key, item in value.items())
        return f"{{{items}}}"
    raise TypeError(f"cannot write {value!r} as Python source")
