"""Each Keras call the take-home script writes builds exactly what the service builds.

For every layer type and optimizer, with arguments away from their defaults and at them, the
generated expression is evaluated with real Keras and its config compared with the service's
own object (names aside: Keras numbers those per process).
"""

from __future__ import annotations

from typing import Any

import keras
import pytest

from service.export import notebook
from service.export.keras_code import keras_code
from service.ml import evaluation
from service.ml.build import build_model, make_optimizer
from service.mnist import IMAGE_SHAPE
from service.schemas.experiments import ExperimentCreate
from service.spec.layers import LAYER_TYPES, Input
from service.spec.optimizers import OPTIMIZER_TYPES
from service.spec.training import CompileSpec
from tests.factories import EVERY_OPTIMIZER_ARGUMENT, EVERY_SCHEDULE, IMAGE, Spec, tiny_spec

# Every layer type, with arguments away from their defaults, in a net that builds.
EVERY_LAYER_ARGUMENT: list[Spec] = [
    {"type": "Input", "shape": [28, 28]},
    IMAGE,
    {
        "type": "Conv2D",
        "filters": 4,
        "kernel_size": [3, 5],
        "strides": 2,
        "padding": "same",
        "activation": "relu",
        "kernel_initializer": "he_normal",
        "use_bias": False,
        "kernel_regularizer": {"type": "l1_l2", "l1": 0.001, "l2": 0.002},
        "kernel_constraint": {"type": "max_norm", "max_value": 3.0, "axis": [0, 1, 2]},
    },
    {"type": "PReLU", "alpha_initializer": "ones", "shared_axes": [1, 2]},
    {"type": "MaxPooling2D", "pool_size": [2, 2], "strides": 1, "padding": "same"},
    {"type": "Conv2D", "filters": 2, "kernel_size": 3},
    {"type": "MaxPooling2D"},
    {"type": "BatchNormalization", "momentum": 0.9, "epsilon": 0.01},
    {"type": "Flatten"},
    {"type": "Dropout", "rate": 0.1},
    {"type": "AlphaDropout", "rate": 0.1},
    {
        "type": "Dense",
        "units": 20,
        "kernel_initializer": "lecun_normal",
        "use_bias": False,
        "kernel_regularizer": {"type": "l2", "l2": 0.001},
        "kernel_constraint": {"type": "unit_norm", "axis": 1},
    },
    {"type": "LeakyReLU", "negative_slope": 0.1},
    {"type": "Dense", "units": 20, "kernel_regularizer": {"type": "l1"}},
    {"type": "ELU", "alpha": 0.5},
    {"type": "Dense", "units": 20, "kernel_constraint": {"type": "non_neg"}},
    {"type": "ReLU", "max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5},
    {"type": "Dense", "units": 20, "kernel_regularizer": {"type": "l2"}},
    {"type": "ReLU"},
    {"type": "BatchNormalization"},
    {"type": "LeakyReLU"},
    {"type": "Dense", "units": 10},
    {"type": "Activation", "activation": "softmax"},
    {"type": "Reshape", "target_shape": [10]},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]


def config(made: Any) -> dict[str, Any]:
    found: dict[str, Any] = made.get_config()
    found.pop("name", None)
    return found


def test_the_examples_cover_every_layer_type() -> None:
    assert {layer["type"] for layer in EVERY_LAYER_ARGUMENT} == set(LAYER_TYPES)


def test_every_layer_is_written_as_the_layer_the_service_builds() -> None:
    spec = ExperimentCreate.model_validate(tiny_spec() | {"layers": EVERY_LAYER_ARGUMENT})
    built = build_model(spec).layers
    layers = [layer for layer in spec.layers if not isinstance(layer, Input)]
    for layer_spec, layer in zip(layers, built, strict=True):
        code = keras_code(layer_spec)
        assert config(eval(code, {"keras": keras})) == config(layer), code


def test_an_input_layer_is_written_as_the_models_input() -> None:
    spec = ExperimentCreate.model_validate(tiny_spec() | {"layers": EVERY_LAYER_ARGUMENT})
    code = keras_code(spec.layers[0])
    assert tuple(eval(code, {"keras": keras}).shape) == (None, *IMAGE_SHAPE), code


@pytest.mark.parametrize(
    "optimizer",
    [
        *EVERY_OPTIMIZER_ARGUMENT,
        *({"type": name} for name in OPTIMIZER_TYPES),
        *({"type": "SGD", "learning_rate": schedule} for schedule in EVERY_SCHEDULE),
    ],
    ids=lambda optimizer: "-".join(str(value) for value in optimizer.values())[:60],
)
def test_every_optimizer_is_written_as_the_one_the_service_makes(optimizer: Spec) -> None:
    spec = CompileSpec.model_validate({"optimizer": optimizer}).optimizer
    code = keras_code(spec)
    assert config(eval(code, {"keras": keras})) == config(make_optimizer(spec)), code


def test_the_script_scores_in_the_services_evaluation_batch() -> None:
    assert notebook.EVALUATION_BATCH == evaluation.EVALUATION_BATCH
