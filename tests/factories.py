"""Experiment requests as JSON-able dicts, in the exact format clients POST, for every test.

Each notebook factory takes overrides: `fit={...}` is merged into the "fit" object, any other
keyword replaces that top-level key (`layers=[...]`, `compile={...}`, `name="..."`). Every call
returns a fresh dict, so a test may mutate what it gets.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NamedTuple

Spec = dict[str, Any]

FLATTEN: Spec = {"type": "Flatten"}
SOFTMAX_10: Spec = {"type": "Dense", "units": 10, "activation": "softmax"}
IMAGE: Spec = {"type": "Reshape", "target_shape": [28, 28, 1]}  # what Conv2D needs first
NOTEBOOK_FIT: Spec = {"epochs": 10, "batch_size": 32, "validation_size": 5000, "seed": 42}


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


def leaky_relu_spec(**overrides: Any) -> Spec:
    """The notebook's LeakyReLU net: 266,610 parameters, SGD with learning rate 1e-3."""
    layers = [
        FLATTEN,
        {"type": "Dense", "units": 300, "kernel_initializer": "he_normal"},
        {"type": "LeakyReLU"},
        {"type": "Dense", "units": 100, "kernel_initializer": "he_normal"},
        {"type": "LeakyReLU"},
        SOFTMAX_10,
    ]
    optimizer = {"type": "SGD", "learning_rate": 0.001}
    return _spec("leaky-relu", layers, optimizer, NOTEBOOK_FIT, overrides)


def batchnorm_spec(**overrides: Any) -> Spec:
    """The notebook's BatchNormalization net: 271,346 parameters, 2,368 of them non-trainable."""
    layers = [
        FLATTEN,
        {"type": "BatchNormalization"},
        {"type": "Dense", "units": 300, "activation": "relu"},
        {"type": "BatchNormalization"},
        {"type": "Dense", "units": 100, "activation": "relu"},
        {"type": "BatchNormalization"},
        SOFTMAX_10,
    ]
    optimizer = {"type": "SGD", "learning_rate": 0.001}
    return _spec("batchnorm", layers, optimizer, NOTEBOOK_FIT, overrides)


def dropout_spec(**overrides: Any) -> Spec:
    """The notebook's Dropout net: 266,610 parameters, SGD with learning rate 1e-3."""
    layers = [
        FLATTEN,
        {"type": "Dropout", "rate": 0.2},
        {"type": "Dense", "units": 300, "activation": "elu", "kernel_initializer": "he_normal"},
        {"type": "Dropout", "rate": 0.2},
        {"type": "Dense", "units": 100, "activation": "elu", "kernel_initializer": "he_normal"},
        {"type": "Dropout", "rate": 0.2},
        SOFTMAX_10,
    ]
    optimizer = {"type": "SGD", "learning_rate": 0.001}
    return _spec("dropout", layers, optimizer, NOTEBOOK_FIT, overrides)


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


# Every optimizer with every argument away from its Keras default, in OPTIMIZER_TYPES order.
EVERY_OPTIMIZER_ARGUMENT: list[Spec] = [
    {"type": "SGD", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    {"type": "Adagrad", "learning_rate": 0.01, "initial_accumulator_value": 0.2, "epsilon": 1e-6},
    {
        "type": "RMSprop",
        "learning_rate": 0.002,
        "rho": 0.95,
        "momentum": 0.5,
        "epsilon": 1e-6,
        "centered": True,
    },
    {
        "type": "Adam",
        "learning_rate": 0.002,
        "beta_1": 0.8,
        "beta_2": 0.99,
        "epsilon": 1e-6,
        "amsgrad": True,
    },
    {"type": "Adamax", "learning_rate": 0.002, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
    {"type": "Nadam", "learning_rate": 0.002, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
]


class ParamCounts(NamedTuple):
    total: int
    trainable: int
    non_trainable: int


# The counts `model.summary()` prints for the notebook's nets; the service must match them.
NOTEBOOK_NETS: dict[str, tuple[Callable[..., Spec], ParamCounts]] = {
    "leaky_relu": (leaky_relu_spec, ParamCounts(266_610, 266_610, 0)),
    "batchnorm": (batchnorm_spec, ParamCounts(271_346, 268_978, 2_368)),
    "dropout": (dropout_spec, ParamCounts(266_610, 266_610, 0)),
}
