"""The service's builder against Keras itself, on seeded random nets.

Each random net is JSON as a learner writes it. A reference builds it the way a notebook would,
`keras.layers.<type>(**arguments)` with no help from the service; the service validates it and
builds it with its own builder. Where the spec is accepted, both Sequentials must agree layer by
layer (type, config, parameters, output shape). Near misses (one argument pushed to an edge)
must be refused with a 422 whenever Keras refuses them, and never answer a 500.

Seeded, and bounded so the file stays within seconds: every run sends the same nets.
"""

from __future__ import annotations

import copy
import logging
import random
from typing import Any

import keras
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.errors import SpecRejected
from service.ml.build import build_model
from service.schemas.experiments import ExperimentCreate
from service.spec.layers import ACTIVATIONS, INITIALIZERS, ReLU
from tests.factories import FLATTEN, SOFTMAX_10, tiny_spec

VALID_NETS = 60
NEAR_MISSES = 40
Layer = dict[str, Any]


def _maybe(rng: random.Random, layer: Layer, key: str, value: Any) -> None:
    if rng.random() < 0.5:
        layer[key] = value


def _kernel_arguments(rng: random.Random, layer: Layer) -> Layer:
    _maybe(rng, layer, "activation", rng.choice(ACTIVATIONS))
    _maybe(rng, layer, "kernel_initializer", rng.choice(INITIALIZERS))
    _maybe(rng, layer, "use_bias", rng.random() < 0.5)
    regularizers: list[Any] = [
        "l1",
        "L2",
        "l1l2",
        {"type": "l2", "l2": round(rng.uniform(0, 0.1), 4)},
        {"type": "l1_l2", "l1": round(rng.uniform(0, 0.1), 4), "l2": 0.001},
    ]
    _maybe(rng, layer, "kernel_regularizer", rng.choice(regularizers))
    constraints: list[Any] = ["non_neg", {"type": "max_norm", "max_value": rng.uniform(0.5, 4)}]
    _maybe(rng, layer, "kernel_constraint", rng.choice(constraints))
    return layer


def _any_shape_layer(rng: random.Random, axes: int) -> Layer:
    """A layer that keeps its input's shape."""
    choices: list[Layer] = [
        {"type": "Activation", "activation": rng.choice(ACTIVATIONS)},
        {"type": "LeakyReLU", "negative_slope": round(rng.uniform(0, 1), 3)},
        {"type": "ELU", "alpha": round(rng.uniform(0, 10), 3)},
        {
            "type": "ReLU",
            "max_value": rng.choice([None, round(rng.uniform(0, 10), 2)]),
            "negative_slope": round(rng.uniform(0, 1), 3),
            "threshold": round(rng.uniform(0, 1), 3),
        },
        {"type": "PReLU", "shared_axes": rng.choice([None, list(range(1, axes))])},
        {"type": "Dropout", "rate": round(rng.uniform(0, 0.9), 2)},
        {"type": "AlphaDropout", "rate": round(rng.uniform(0, 0.5), 2)},
        {
            "type": "BatchNormalization",
            "momentum": round(rng.uniform(0, 1), 3),
            "epsilon": rng.choice([1e-3, 1e-5, 0.1]),
        },
    ]
    layer = rng.choice(choices)
    if layer.get("shared_axes") == []:
        layer["shared_axes"] = None
    return layer


def random_net(rng: random.Random) -> list[Layer]:
    """A net the spec should accept: an optional image block, a dense block, a softmax."""
    layers: list[Layer] = []
    if rng.random() < 0.3:
        layers.append({"type": "Input", "shape": [28, 28]})
    if rng.random() < 0.5:
        layers.append({"type": "Reshape", "target_shape": [28, 28, 1]})
        side = 28
        for _ in range(rng.randint(1, 3)):
            kind = rng.random()
            if kind < 0.5:
                kernel = rng.randint(1, 3)
                stride = rng.randint(1, 2)
                padding = rng.choice(["valid", "same"]) if side > kernel else "same"
                conv: Layer = {
                    "type": "Conv2D",
                    "filters": rng.randint(1, 8),
                    "kernel_size": rng.choice([kernel, [kernel, kernel]]),
                    "strides": stride,
                    "padding": padding,
                }
                layers.append(_kernel_arguments(rng, conv))
                side = -(-side // stride) if padding == "same" else (side - kernel) // stride + 1
            elif kind < 0.7 and side >= 2:
                layers.append({"type": "MaxPooling2D", "pool_size": 2, "padding": "same"})
                side = -(-side // 2)
            else:
                layers.append(_any_shape_layer(rng, axes=4))
        layers.append(FLATTEN)
    else:
        layers.append(FLATTEN)
    for _ in range(rng.randint(0, 3)):
        if rng.random() < 0.5:
            units = rng.randint(1, 32)
            layers.append(_kernel_arguments(rng, {"type": "Dense", "units": units}))
        else:
            layers.append(_any_shape_layer(rng, axes=2))
    layers.append(copy.deepcopy(SOFTMAX_10))
    return layers


def _keras_object(module: Any, value: Any) -> Any:
    """A regularizer or constraint as a notebook writes it: a name, or a call with arguments."""
    if value is None or isinstance(value, str):
        return module.get(value)
    arguments = {key: item for key, item in value.items() if key != "type"}
    return getattr(module, value["type"])(**arguments)


def reference_model(layers: list[Layer]) -> keras.Sequential:
    """What Keras makes of the JSON with no help from the service."""
    built = []
    for layer in layers:
        if layer["type"] == "Input":
            continue
        arguments = {key: value for key, value in layer.items() if key != "type"}
        for key, module in (
            ("kernel_regularizer", keras.regularizers),
            ("kernel_constraint", keras.constraints),
        ):
            if key in arguments:
                arguments[key] = _keras_object(module, arguments[key])
        for key in ("kernel_size", "strides", "pool_size", "target_shape"):
            if isinstance(arguments.get(key), list):
                arguments[key] = tuple(arguments[key])
        built.append(getattr(keras.layers, layer["type"])(**arguments))
    return keras.Sequential([keras.Input(shape=(28, 28)), *built])


def _spec(layers: list[Layer]) -> Layer:
    spec = tiny_spec()
    spec["layers"] = layers
    return spec


def _described(layer: keras.layers.Layer) -> dict[str, Any]:
    config = {key: value for key, value in layer.get_config().items() if key != "name"}
    return {
        "type": type(layer).__name__,
        "config": config,
        "params": layer.count_params(),
        "output_shape": tuple(layer.output.shape),
    }


@pytest.mark.parametrize("seed", range(VALID_NETS))
def test_random_valid_net_is_built_as_keras_builds_it(seed: int) -> None:
    layers = random_net(random.Random(seed))
    spec = ExperimentCreate.model_validate(_spec(layers))

    ours = build_model(spec)
    theirs = reference_model(layers)

    assert [_described(layer) for layer in ours.layers] == [
        _described(layer) for layer in theirs.layers
    ]
    assert ours.count_params() == theirs.count_params() == spec.parameter_count


# Values a learner gets wrong, for any numeric argument: Keras refuses some of them.
EDGES = (-1, -0.5, 0, 1.5, 1e9)


def near_miss(rng: random.Random) -> list[Layer]:
    """A valid net with one numeric argument of one layer pushed to an edge."""
    layers = random_net(rng)
    spots = [
        (index, key)
        for index, layer in enumerate(layers)
        for key, value in layer.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    index, key = rng.choice(spots)
    layers[index][key] = rng.choice(EDGES)
    return layers


def _keras_builds(layers: list[Layer]) -> bool:
    try:
        reference_model(layers)
    except (ValueError, TypeError):
        return False
    return True


def test_random_near_misses_are_422_when_keras_refuses_them_and_never_500(
    client: TestClient,
) -> None:
    refused_by_keras = 0
    for seed in range(NEAR_MISSES):
        layers = near_miss(random.Random(1000 + seed))
        response = client.post("/experiments/validate", json=_spec(layers))
        assert response.status_code in (200, 422), (layers, response.text)
        if not _keras_builds(layers):
            refused_by_keras += 1
            assert response.status_code == 422, (layers, response.text)
    assert refused_by_keras >= 5  # the edges do reach Keras's own checks


@pytest.mark.parametrize(
    "relu",
    [
        {"type": "ReLU", "threshold": -0.5},
        {"type": "ReLU", "max_value": -1.0},
        {"type": "ReLU", "negative_slope": -0.1},
    ],
)
def test_relu_arguments_keras_refuses_are_422_everywhere(client: TestClient, relu: Layer) -> None:
    spec = _spec([FLATTEN, relu, SOFTMAX_10])
    for path in ("/experiments/validate", "/experiments"):
        response = client.post(path, json=spec)
        assert response.status_code == 422, response.text
        argument = next(key for key in relu if key != "type")
        assert response.json()["details"][0]["loc"] == ["body", "layers", 1, "ReLU", argument]
    in_base = {"base": spec, "space": {"fit.seed": [1, 2]}}
    in_space = {
        "base": _spec([FLATTEN, {"type": "ReLU"}, SOFTMAX_10]),
        "space": {"layers[1]": [relu]},
    }
    for study in (in_base, in_space):
        response = client.post("/studies", json=study)
        assert response.status_code == 422, response.text
        assert f"ReLU.{argument}" in response.json()["detail"]


def test_a_layer_keras_refuses_after_validation_is_rejected_naming_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The safety net: a check the spec lacks (simulated by skipping validation) is a 422."""
    spec = ExperimentCreate.model_validate(_spec([FLATTEN, {"type": "ReLU"}, SOFTMAX_10]))
    unchecked = ReLU.model_construct(type="ReLU", max_value=None, negative_slope=0.0, threshold=-1)
    gap = spec.model_copy(update={"layers": [spec.layers[0], unchecked, spec.layers[2]]})

    with caplog.at_level(logging.ERROR), pytest.raises(SpecRejected) as rejected:
        build_model(gap)

    assert rejected.value.message.startswith("layers[1] (ReLU): Keras cannot build this layer")
    assert "threshold" in rejected.value.message
    assert "a gap in the spec's checks: layers[1] (ReLU)" in caplog.text


def test_a_net_keras_cannot_assemble_after_validation_is_rejected_naming_the_layer() -> None:
    spec = ExperimentCreate.model_validate(_spec([FLATTEN, SOFTMAX_10]))
    conv = ExperimentCreate.model_validate(
        _spec(
            [
                {"type": "Reshape", "target_shape": [28, 28, 1]},
                {"type": "Conv2D", "filters": 2, "kernel_size": 3},
                FLATTEN,
                SOFTMAX_10,
            ]
        )
    ).layers[1]
    gap = spec.model_copy(update={"layers": [spec.layers[0], conv, spec.layers[1]]})

    with pytest.raises(SpecRejected) as rejected:
        build_model(gap)

    assert rejected.value.message.startswith("layers[1] (Conv2D): Keras cannot build this layer")


def test_refused_specs_are_validation_errors_before_keras() -> None:
    with pytest.raises(ValidationError):
        ExperimentCreate.model_validate(
            _spec([FLATTEN, {"type": "ReLU", "threshold": -0.5}, SOFTMAX_10])
        )
