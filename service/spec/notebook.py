"""The notebook's three nets, as the JSON a client POSTs: one definition for the README's
examples, the tests, the benchmarks and the study presets.

Each is the chapter's Sequential MLP (Flatten; Dense 300 and 100; Dense 10 softmax) compiled
with SGD at learning rate 1e-3 and fitted for 10 epochs of 32 with the first 5,000 training
images held out for validation, seed 42. Every call returns a fresh dict that a caller may
change.
"""

from __future__ import annotations

import copy
from typing import Any, Final, NamedTuple

Spec = dict[str, Any]

FLATTEN: Final[Spec] = {"type": "Flatten"}
SOFTMAX_10: Final[Spec] = {"type": "Dense", "units": 10, "activation": "softmax"}
NOTEBOOK_OPTIMIZER: Final[Spec] = {"type": "SGD", "learning_rate": 0.001}
NOTEBOOK_FIT: Final[Spec] = {"epochs": 10, "batch_size": 32, "validation_size": 5000, "seed": 42}

_LAYERS: Final[dict[str, list[Spec]]] = {
    "leaky_relu": [
        FLATTEN,
        {"type": "Dense", "units": 300, "kernel_initializer": "he_normal"},
        {"type": "LeakyReLU"},
        {"type": "Dense", "units": 100, "kernel_initializer": "he_normal"},
        {"type": "LeakyReLU"},
        SOFTMAX_10,
    ],
    "batchnorm": [
        FLATTEN,
        {"type": "BatchNormalization"},
        {"type": "Dense", "units": 300, "activation": "relu"},
        {"type": "BatchNormalization"},
        {"type": "Dense", "units": 100, "activation": "relu"},
        {"type": "BatchNormalization"},
        SOFTMAX_10,
    ],
    "dropout": [
        FLATTEN,
        {"type": "Dropout", "rate": 0.2},
        {"type": "Dense", "units": 300, "activation": "elu", "kernel_initializer": "he_normal"},
        {"type": "Dropout", "rate": 0.2},
        {"type": "Dense", "units": 100, "activation": "elu", "kernel_initializer": "he_normal"},
        {"type": "Dropout", "rate": 0.2},
        SOFTMAX_10,
    ],
}


class ParamCounts(NamedTuple):
    total: int
    trainable: int
    non_trainable: int


# What `model.summary()` prints for each net; the service's summary must match.
PARAM_COUNTS: Final[dict[str, ParamCounts]] = {
    "leaky_relu": ParamCounts(266_610, 266_610, 0),
    "batchnorm": ParamCounts(271_346, 268_978, 2_368),
    "dropout": ParamCounts(266_610, 266_610, 0),
}
NETS: Final[tuple[str, ...]] = tuple(_LAYERS)


def notebook_layers(net: str) -> list[Spec]:
    """The layer list of one of NETS."""
    return copy.deepcopy(_LAYERS[net])


def notebook_spec(net: str) -> Spec:
    """The whole spec (layers, compile, fit) of one of NETS, without a name."""
    return {
        "layers": notebook_layers(net),
        "compile": {
            "optimizer": dict(NOTEBOOK_OPTIMIZER),
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
        },
        "fit": dict(NOTEBOOK_FIT),
    }
