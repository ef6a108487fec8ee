"""Keras's own JSON as spec JSON: `model.to_json()` (Keras 3's format, and tf.keras 2's) as a
layer list, `keras.optimizers.serialize(optimizer)` as an optimizer.

Keras writes every argument, defaults included; an argument the spec has is kept, one it lacks
is accepted only at Keras's default (a layer's name, its dtype, a zero bias initializer) and
refused otherwise, by name. Keras stores floats as float32 (1e-3 reads 0.0010000000474974513):
they are read back as the shortest decimal of that float32.
"""

from __future__ import annotations

import json
from typing import Any

from service.spec.from_code.vocabulary import float32_shortest, snake_case
from service.spec.layers import INITIALIZERS, LAYER_TYPES
from service.spec.optimizers import OPTIMIZER_TYPES
from service.spec.schedules import SCHEDULE_TYPES

_ANY = object()
_ZEROS, _ONES = "zeros", "ones"
# Arguments Keras writes that the spec does not have: accepted at these values only.
KERAS_DEFAULTS: dict[str, Any] = {
    "name": _ANY,
    "trainable": True,
    "dtype": "float32",
    "data_format": "channels_last",
    "bias_initializer": _ZEROS,
    "beta_initializer": _ZEROS,
    "gamma_initializer": _ONES,
    "moving_mean_initializer": _ZEROS,
    "moving_variance_initializer": _ONES,
    "bias_regularizer": None,
    "activity_regularizer": None,
    "beta_regularizer": None,
    "gamma_regularizer": None,
    "alpha_regularizer": None,
    "bias_constraint": None,
    "beta_constraint": None,
    "gamma_constraint": None,
    "alpha_constraint": None,
    "center": True,
    "scale": True,
    "synchronized": False,
    "renorm": False,
    "renorm_clipping": None,
    "renorm_momentum": 0.99,
    "fused": None,
    "virtual_batch_size": None,
    "adjustment": None,
    "seed": None,
    "noise_shape": None,
    "quantization_config": None,
    "lora_rank": None,
    "lora_alpha": None,
    "groups": 1,
    # Optimizers
    "weight_decay": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
    "jit_compile": _ANY,
    "is_legacy_optimizer": False,
    "decay": 0.0,
}
FED = [None, 28, 28]


class KerasJsonError(ValueError):
    """The JSON is not Keras's, or holds what the spec cannot; the message says which."""


def _plain(value: Any) -> Any:
    """A Keras config value as spec JSON: floats shortened, nested objects given a type."""
    if isinstance(value, float):
        return float32_shortest(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict) and "class_name" in value:
        return _object(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


_OBJECTS = {
    "L1": "l1",
    "L2": "l2",
    "L1L2": "l1_l2",
    "MaxNorm": "max_norm",
    "NonNeg": "non_neg",
    "UnitNorm": "unit_norm",
    "DTypePolicy": "dtype",
}


def _object(value: dict[str, Any]) -> Any:
    """A nested Keras object: an initializer is its name, a policy its dtype, the rest typed."""
    kind = str(value["class_name"])
    config = value.get("config") or {}
    if kind == "DTypePolicy":
        return config.get("name")
    if snake_case(kind) in INITIALIZERS:
        seeded = {key: item for key, item in config.items() if item is not None}
        if seeded:
            raise KerasJsonError(
                f"the initializer {kind} with {seeded}: the service takes an initializer by "
                "name only, seeded by fit.seed"
            )
        return snake_case(kind)
    spec_type = _OBJECTS.get(kind, kind)
    return {"type": spec_type, **_config(config, kind, keep=())}


def _config(config: dict[str, Any], what: str, *, keep: tuple[str, ...]) -> dict[str, Any]:
    """The arguments the spec has (and any not at Keras's default, which the spec names)."""
    found: dict[str, Any] = {}
    for key, raw in config.items():
        value = _plain(raw)
        default = KERAS_DEFAULTS.get(key, _MISSING)
        if key in keep or default is _MISSING:
            found[key] = value
        elif default is not _ANY and value != default:
            raise KerasJsonError(
                f"{what}: {key}={value!r} is not something the service sets; it keeps Keras's "
                f"default {default!r}"
            )
    return found


_MISSING = object()


def _document(model: Any) -> dict[str, Any]:
    if isinstance(model, str):
        try:
            model = json.loads(model)
        except ValueError as error:
            raise KerasJsonError(f"model is not JSON ({error}); give model.to_json()") from None
    if not isinstance(model, dict) or "class_name" not in model:
        raise KerasJsonError(
            'give model as Keras\'s model.to_json(): {"class_name": "Sequential", "config": '
            "{...}}, as an object or as its string"
        )
    return model


def keras_model(model: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The layer list of a Sequential's `to_json()`, and its compile arguments when Keras
    wrote them (Keras 3 does, for a compiled model)."""
    document = _document(model)
    if document["class_name"] != "Sequential":
        raise KerasJsonError(
            f"a {document['class_name']} model: the service trains Sequential models; build "
            "it as keras.Sequential([...])"
        )
    config = document.get("config")
    # tf.keras 1.x / early 2.x wrote the layer list itself as the config.
    layers = config if isinstance(config, list) else (config or {}).get("layers")
    if not isinstance(layers, list) or not layers:
        raise KerasJsonError("the Sequential's config has no layers")
    converted: list[dict[str, Any]] = []
    for index, layer in enumerate(layers):
        found = _layer(index, layer, first=not converted)
        if found is not None:
            converted.append(found)
    return converted, _compile(document.get("compile_config"))


def _layer(index: int, layer: Any, *, first: bool) -> dict[str, Any] | None:
    if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
        raise KerasJsonError(f"layers[{index}] is not a Keras layer's JSON (no class_name)")
    kind = layer["class_name"]
    config = dict(layer.get("config") or {})
    where = f"layers[{index}] ({kind})"
    shape = config.pop("batch_shape", config.pop("batch_input_shape", None))
    if shape is not None and (not first or shape != FED):
        raise KerasJsonError(
            f"{where}: input shape {shape}: the service feeds MNIST's 28x28 images, so the "
            "input can only be (None, 28, 28), on the first layer"
        )
    if kind == "InputLayer":
        return None  # the service gives every model its (28, 28) input
    if kind not in LAYER_TYPES:
        raise KerasJsonError(
            f"{where}: unknown layer class {kind!r}; the service builds {', '.join(LAYER_TYPES)}"
        )
    for key in ("sparse", "ragged", "optional"):
        config.pop(key, None)
    if kind == "BatchNormalization":
        axis = config.pop("axis", -1)
        if axis not in (-1, [-1]) and not (isinstance(axis, list) and len(axis) == 1):
            raise KerasJsonError(f"{where}: axis={axis}: the service normalises the last axis")
    if kind in ("Conv2D",):
        dilation = config.pop("dilation_rate", 1)
        if dilation not in (1, [1, 1], (1, 1)):
            raise KerasJsonError(f"{where}: dilation_rate={dilation}: the service uses 1")
    found = {"type": kind, **_config(config, where, keep=())}
    if found.get("activation") == "linear" and kind != "Activation":
        del found["activation"]  # Keras writes "linear" for none
    if kind == "MaxPooling2D" and found.get("strides") == found.get("pool_size"):
        found.pop("strides", None)
    return found


def _compile(config: Any) -> dict[str, Any] | None:
    if not isinstance(config, dict) or config.get("optimizer") is None:
        return None
    compiled: dict[str, Any] = {"optimizer": keras_optimizer(config["optimizer"])}
    if config.get("loss") is not None:
        compiled["loss"] = config["loss"]
    if config.get("metrics") is not None:
        compiled["metrics"] = config["metrics"]
    return compiled


def is_serialized(value: Any) -> bool:
    """Whether `value` is Keras's serialize() output (`class_name` and `config`)."""
    return isinstance(value, dict) and "class_name" in value and "type" not in value


def keras_optimizer(value: Any) -> Any:
    """`keras.optimizers.serialize(optimizer)` as the spec's optimizer (a name stays a name)."""
    if not (isinstance(value, dict) and is_serialized(value)):
        return value
    kind = str(value["class_name"]).removeprefix("Custom>")
    if kind not in OPTIMIZER_TYPES:
        raise KerasJsonError(
            f"unknown optimizer class {kind!r}; the service trains with "
            f"{', '.join(OPTIMIZER_TYPES)}"
        )
    config = dict(value.get("config") or {})
    rate = config.get("learning_rate")
    if isinstance(rate, dict) and is_serialized(rate):
        rate_kind = str(rate["class_name"])
        if rate_kind not in SCHEDULE_TYPES:
            raise KerasJsonError(
                f"unknown learning-rate schedule {rate_kind!r}; the service takes "
                f"{', '.join(SCHEDULE_TYPES)}"
            )
        schedule = {k: v for k, v in (rate.get("config") or {}).items() if k != "name"}
        config["learning_rate"] = {"type": rate_kind, **_plain(schedule)}
    learning_rate = config.pop("learning_rate", None)
    found = {"type": kind, **_config(config, kind, keep=())}
    if learning_rate is not None:
        found["learning_rate"] = _plain(learning_rate)
    return found
