"""Spec -> compiled Keras model, and the per-layer summary the API shows before training."""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections import OrderedDict
from typing import Any, Protocol

import keras

from service.errors import SpecRejected
from service.mnist import IMAGE_SHAPE
from service.spec import layers as spec_layers
from service.spec.base import SpecModel
from service.spec.experiment import ExperimentSpec
from service.spec.layers import Layer as LayerSpec
from service.spec.optimizers import Optimizer as OptimizerSpec
from service.spec.schedules import SCHEDULE_TYPES

log = logging.getLogger(__name__)

# Keras's own automatic names, given explicitly so that building a model twice in one process
# names its layers the same way (no global name counter, no clear_session between builds).
_KERAS_NAMES = {
    "Flatten": "flatten",
    "Dense": "dense",
    "Activation": "activation",
    "LeakyReLU": "leaky_re_lu",
    "PReLU": "p_re_lu",
    "ELU": "elu",
    "ReLU": "re_lu",
    "AlphaDropout": "alpha_dropout",
    "BatchNormalization": "batch_normalization",
    "Dropout": "dropout",
    "Conv2D": "conv2d",
    "MaxPooling2D": "max_pooling2d",
    "Reshape": "reshape",
}


def _names(layers: list[LayerSpec]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for layer in layers:
        base = _KERAS_NAMES[layer.type]
        count = seen.get(base, 0)
        seen[base] = count + 1
        names.append(base if count == 0 else f"{base}_{count}")
    return names


# The spec names regularizers and constraints as Keras's string identifiers do ("l2",
# "max_norm"); these are the classes behind those names.
_KERAS_CLASSES: dict[str, Any] = {
    "l1": keras.regularizers.L1,
    "l2": keras.regularizers.L2,
    "l1_l2": keras.regularizers.L1L2,
    "max_norm": keras.constraints.MaxNorm,
    "non_neg": keras.constraints.NonNeg,
    "unit_norm": keras.constraints.UnitNorm,
    **{name: getattr(keras.optimizers.schedules, name) for name in SCHEDULE_TYPES},
}


class _Tagged(Protocol):
    @property
    def type(self) -> str: ...

    def model_dump(self, *, exclude: set[str]) -> dict[str, Any]: ...


def _keras_object(spec: _Tagged | None) -> Any:
    """A regularizer, constraint or schedule from its spec: its class with the spec's arguments."""
    if spec is None:
        return None
    return _KERAS_CLASSES[spec.type](**spec.model_dump(exclude={"type"}))


def _kernel_arguments(spec: spec_layers.Dense | spec_layers.Conv2D) -> dict[str, Any]:
    """What a Dense and a Conv2D say alike: activation, and the kernel's start and limits."""
    return {
        "activation": spec.activation,
        "kernel_initializer": spec.kernel_initializer,
        "use_bias": spec.use_bias,
        "kernel_regularizer": _keras_object(spec.kernel_regularizer),
        "kernel_constraint": _keras_object(spec.kernel_constraint),
    }


def _layer(spec: LayerSpec, name: str) -> keras.layers.Layer:
    match spec:
        case spec_layers.Flatten():
            return keras.layers.Flatten(name=name)
        case spec_layers.Dense():
            return keras.layers.Dense(spec.units, name=name, **_kernel_arguments(spec))
        case spec_layers.ActivationLayer():
            return keras.layers.Activation(spec.activation, name=name)
        case spec_layers.LeakyReLU():
            return keras.layers.LeakyReLU(negative_slope=spec.negative_slope, name=name)
        case spec_layers.PReLU():
            return keras.layers.PReLU(
                alpha_initializer=spec.alpha_initializer, shared_axes=spec.shared_axes, name=name
            )
        case spec_layers.ELU():
            return keras.layers.ELU(alpha=spec.alpha, name=name)
        case spec_layers.ReLU():
            return keras.layers.ReLU(
                max_value=spec.max_value,
                negative_slope=spec.negative_slope,
                threshold=spec.threshold,
                name=name,
            )
        case spec_layers.BatchNormalization():
            return keras.layers.BatchNormalization(
                momentum=spec.momentum, epsilon=spec.epsilon, name=name
            )
        case spec_layers.Dropout():
            return keras.layers.Dropout(spec.rate, name=name)
        case spec_layers.AlphaDropout():
            return keras.layers.AlphaDropout(spec.rate, name=name)
        case spec_layers.Conv2D():
            return keras.layers.Conv2D(
                spec.filters,
                spec.kernel,
                name=name,
                strides=spec.stride,
                padding=spec.padding,
                **_kernel_arguments(spec),
            )
        case spec_layers.MaxPooling2D():
            return keras.layers.MaxPooling2D(
                spec.pool, strides=spec.stride, padding=spec.padding, name=name
            )
        case spec_layers.Reshape():
            return keras.layers.Reshape(tuple(spec.target_shape), name=name)
    raise TypeError(f"unsupported layer {spec!r}")  # pragma: no cover - the union is closed


def build_model(spec: ExperimentSpec) -> keras.Sequential:
    """The same Sequential a notebook would write; weights depend on the global Keras seed.

    The spec's checks should leave Keras nothing to refuse. Where Keras refuses a layer all the
    same, that is a check the spec lacks: SpecRejected names the layer, and the log the gap.
    """
    built = [
        (index, layer)
        for index, layer in enumerate(spec.layers)
        if not isinstance(layer, spec_layers.Input)
    ]
    names = _names([layer for _, layer in built])
    layers = []
    for (index, layer), name in zip(built, names, strict=True):
        try:
            layers.append(_layer(layer, name))
        except Exception as error:
            raise _refused(index, layer, error) from error
    try:
        return keras.Sequential([keras.Input(shape=IMAGE_SHAPE), *layers], name="sequential")
    except Exception as error:
        index, layer = built[_first_failing(layers)]
        raise _refused(index, layer, error) from error


def _first_failing(layers: list[keras.layers.Layer]) -> int:
    """Which layer Keras could not build: each applied in turn to a symbolic image batch."""
    tensor = keras.Input(shape=IMAGE_SHAPE)
    for position, layer in enumerate(layers):
        try:
            tensor = layer(tensor)
        except Exception:
            return position
    return len(layers) - 1  # the model itself, after its last layer


def _refused(index: int, layer: LayerSpec, error: Exception) -> SpecRejected:
    where = f"layers[{index}] ({layer.type})"
    log.error(
        "a gap in the spec's checks: %s passed validation but Keras refused it: %s: %s",
        where,
        type(error).__name__,
        error,
    )
    return SpecRejected(f"{where}: Keras cannot build this layer: {error}")


def make_optimizer(spec: OptimizerSpec) -> keras.optimizers.Optimizer:
    arguments = spec.model_dump(exclude={"type", "learning_rate"})
    rate = spec.learning_rate
    learning_rate = _keras_object(rate) if isinstance(rate, SpecModel) else rate
    return getattr(keras.optimizers, spec.type)(learning_rate=learning_rate, **arguments)


def compile_model(
    model: keras.Model,
    spec: ExperimentSpec,
    *,
    steps_per_execution: int = 1,
    jit_compile: bool = False,
) -> None:
    """The notebook's `compile`, and how to run it: batches per graph call, XLA or not."""
    model.compile(
        optimizer=make_optimizer(spec.compile.optimizer),
        loss=spec.compile.loss,
        metrics=list(spec.compile.metrics),
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )


def summarize(model: keras.Model) -> dict[str, Any]:
    """Per layer: name, type, output shape, parameters; then the totals, as `model.summary()`."""
    layers = []
    for layer in model.layers:
        output_shape = tuple(layer.output.shape)[1:]
        layers.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": [None, *output_shape],
                "params": int(layer.count_params()),
            }
        )
    trainable = sum(int(keras.ops.size(weight)) for weight in model.trainable_weights)
    non_trainable = sum(int(keras.ops.size(weight)) for weight in model.non_trainable_weights)
    return {
        "layers": layers,
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
    }


# Summaries of nets already built, by their layers: a class submits the same few nets over and
# over, and building one is about half of a submission's time, all of it holding the GIL.
DRY_RUNS_KEPT = 256
_dry_runs: OrderedDict[str, dict[str, Any]] = OrderedDict()
_dry_runs_lock = threading.Lock()


def dry_run(spec: ExperimentSpec) -> dict[str, Any]:
    """Build the model for real, summarise it, and throw it away; the summary of layers built
    before is answered from memory (a build is deterministic in its layers)."""
    key = json.dumps(spec.model_dump(mode="json")["layers"], sort_keys=True)
    with _dry_runs_lock:
        kept = _dry_runs.get(key)
        if kept is not None:
            _dry_runs.move_to_end(key)
            return copy.deepcopy(kept)
    summary = summarize(build_model(spec))  # a refused net raises, and is not kept
    with _dry_runs_lock:
        _dry_runs[key] = copy.deepcopy(summary)
        while len(_dry_runs) > DRY_RUNS_KEPT:
            _dry_runs.popitem(last=False)
    return summary
