"""Experiment requests as JSON-able dicts, in the exact format clients POST, for every test.

Each notebook factory takes overrides: `fit={...}` is merged into the "fit" object, any other
keyword replaces that top-level key (`layers=[...]`, `compile={...}`, `name="..."`). Every call
returns a fresh dict, so a test may mutate what it gets.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from service.spec.notebook import (
    FLATTEN,
    NOTEBOOK_FIT,
    NOTEBOOK_OPTIMIZER,
    PARAM_COUNTS,
    SOFTMAX_10,
    ParamCounts,
    Spec,
    notebook_layers,
)

IMAGE: Spec = {"type": "Reshape", "target_shape": [28, 28, 1]}  # what Conv2D needs first


def _compile(optimizer: Spec) -> Spec:
    return {
        "optimizer": optimizer,
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    }


def _spec(name: str, layers: list[Spec], optimizer: Spec, fit: Spec, overrides: Spec) -> Spec:
    spec = {"name": name, "layers": layers, "compile": _compile(optimizer), "fit": fit}
    fit_overrides = overrides.pop("fit", None) or {}
    spec.update(overrides)
    spec["fit"] = {**spec["fit"], **fit_overrides}
    return copy.deepcopy(spec)


def _notebook(net: str, name: str, overrides: Spec) -> Spec:
    layers = notebook_layers(net)
    return _spec(name, layers, dict(NOTEBOOK_OPTIMIZER), NOTEBOOK_FIT, overrides)


def leaky_relu_spec(**overrides: Any) -> Spec:
    """The notebook's LeakyReLU net: 266,610 parameters, SGD with learning rate 1e-3."""
    return _notebook("leaky_relu", "leaky-relu", overrides)


def batchnorm_spec(**overrides: Any) -> Spec:
    """The notebook's BatchNormalization net: 271,346 parameters, 2,368 of them non-trainable."""
    return _notebook("batchnorm", "batchnorm", overrides)


def dropout_spec(**overrides: Any) -> Spec:
    """The notebook's Dropout net: 266,610 parameters, SGD with learning rate 1e-3."""
    return _notebook("dropout", "dropout", overrides)


def conv_spec(**overrides: Any) -> Spec:
    """A small convolutional net: Reshape, Conv2D 32 3x3, MaxPooling2D, Dense 10; 54,410 params."""
    layers = [
        IMAGE,
        {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
        {"type": "MaxPooling2D", "pool_size": 2},
        FLATTEN,
        SOFTMAX_10,
    ]
    optimizer = {"type": "Adam", "learning_rate": 0.001}
    return _spec("conv", layers, optimizer, NOTEBOOK_FIT, overrides)


def tiny_spec(**fit_overrides: Any) -> Spec:
    """Flatten -> Dense 10 softmax on 2,000 images for 2 epochs: for plumbing, not accuracy.

    Unlike the notebook factories, every keyword goes into "fit".
    """
    fit = {"epochs": 2, "batch_size": 64, "train_size": 2000, "validation_size": 500, "seed": 42}
    return _spec("tiny", [FLATTEN, SOFTMAX_10], {"type": "Adam"}, fit, {"fit": fit_overrides})


# Every optimizer with every argument away from its Keras default, in OPTIMIZER_TYPES order;
# Keras takes one of the three clipping arguments at a time, so each gives one.
EVERY_OPTIMIZER_ARGUMENT: list[Spec] = [
    {"type": "SGD", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True, "clipnorm": 1.0},
    {
        "type": "Adagrad",
        "learning_rate": 0.01,
        "initial_accumulator_value": 0.2,
        "epsilon": 1e-6,
        "clipvalue": 0.5,
    },
    {
        "type": "RMSprop",
        "learning_rate": 0.002,
        "rho": 0.95,
        "momentum": 0.5,
        "epsilon": 1e-6,
        "centered": True,
        "global_clipnorm": 5.0,
    },
    {
        "type": "Adam",
        "learning_rate": 0.002,
        "beta_1": 0.8,
        "beta_2": 0.99,
        "epsilon": 1e-6,
        "amsgrad": True,
        "clipnorm": 2.0,
    },
    {"type": "Adamax", "learning_rate": 0.002, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
    {"type": "Nadam", "learning_rate": 0.002, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
]


# Every learning-rate schedule with its arguments away from their defaults, and with only what
# it needs.
EVERY_SCHEDULE: list[Spec] = [
    {
        "type": "ExponentialDecay",
        "initial_learning_rate": 0.01,
        "decay_steps": 100,
        "decay_rate": 0.9,
        "staircase": True,
    },
    {
        "type": "ExponentialDecay",
        "initial_learning_rate": 0.01,
        "decay_steps": 5,
        "decay_rate": 0.5,
    },
    {"type": "PiecewiseConstantDecay", "boundaries": [100, 200], "values": [0.1, 0.01, 0.001]},
    {
        "type": "InverseTimeDecay",
        "initial_learning_rate": 0.01,
        "decay_steps": 1,
        "decay_rate": 0.5,
        "staircase": True,
    },
    {
        "type": "CosineDecay",
        "initial_learning_rate": 0.01,
        "decay_steps": 1000,
        "alpha": 0.1,
        "warmup_target": 0.1,
        "warmup_steps": 10,
    },
    {"type": "CosineDecay", "initial_learning_rate": 0.01, "decay_steps": 1000},
]


# The counts `model.summary()` prints for the notebook's nets; the service must match them.
NOTEBOOK_NETS: dict[str, tuple[Callable[..., Spec], ParamCounts]] = {
    "leaky_relu": (leaky_relu_spec, PARAM_COUNTS["leaky_relu"]),
    "batchnorm": (batchnorm_spec, PARAM_COUNTS["batchnorm"]),
    "dropout": (dropout_spec, PARAM_COUNTS["dropout"]),
}


def dense_spec(*, epochs: int, train_size: int, units: int = 128, batch_size: int = 32) -> Spec:
    """Flatten -> Dense(units, relu) -> Dense 10 softmax, with epochs as long as a test needs:
    128 units on 12,000 images take a second or two; 512 units, batch 16, 30,000 images, several."""
    spec = tiny_spec(epochs=epochs, train_size=train_size, batch_size=batch_size)
    spec["layers"] = [FLATTEN, {"type": "Dense", "units": units, "activation": "relu"}, SOFTMAX_10]
    return spec
