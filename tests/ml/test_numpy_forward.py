"""The numpy forward pass answers as TensorFlow does, for every layer and activation it claims,
on real MNIST images; nets with anything else keep TensorFlow."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest

from service.ml import numpy_forward as numpy_forward_module
from service.ml.build import build_model
from service.ml.data import load_mnist, split
from service.ml.inference import Predictor
from service.ml.numpy_forward import ACTIVATIONS, numpy_forward
from service.ml.train import train
from service.schemas.experiments import ExperimentCreate
from tests.factories import Spec, batchnorm_spec, conv_spec, dropout_spec, leaky_relu_spec
from tests.helpers import MNIST_PATH

FLOAT32_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """300 MNIST test images as served: float32 in [0, 1]."""
    return (load_mnist(MNIST_PATH).x_test[:300] / 255.0).astype(np.float32)


def _built(spec: Spec) -> keras.Model:
    """The service's model for `spec`, its batch-norm statistics moved away from 0 and 1."""
    model = build_model(ExperimentCreate.model_validate(spec))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights(
                [
                    rng.uniform(0.5, 2.0, w.shape) if i in (0, 3) else rng.normal(0, 0.5, w.shape)
                    for i, w in enumerate(layer.get_weights())
                ]
            )
        if isinstance(layer, keras.layers.PReLU):
            layer.set_weights([rng.uniform(0.0, 0.5, w.shape) for w in layer.get_weights()])
    return model


def _assert_answers_as_tensorflow(model: keras.Model, images: np.ndarray) -> None:
    forward = numpy_forward(model)
    assert forward is not None
    expected = np.asarray(model(images, training=False))
    answered = forward(images)
    assert answered.dtype == np.float32
    np.testing.assert_allclose(answered, expected, rtol=0, atol=FLOAT32_TOLERANCE)
    assert np.array_equal(answered.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(forward(images[:1]), expected[:1], rtol=0, atol=FLOAT32_TOLERANCE)


def _dense(units: int, activation: str = "linear", **extra: Any) -> Spec:
    return {"type": "Dense", "units": units, "activation": activation, **extra}


SOFTMAX_10 = _dense(10, "softmax")
FLATTEN = {"type": "Flatten"}


@pytest.mark.parametrize(
    "factory",
    [leaky_relu_spec, batchnorm_spec, dropout_spec],
    ids=["leaky_relu", "batchnorm", "dropout"],
)
def test_the_notebook_nets_answer_as_tensorflow(
    factory: Callable[[], Spec], images: np.ndarray
) -> None:
    _assert_answers_as_tensorflow(_built(factory()), images)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_answers_as_tensorflow(activation: str, images: np.ndarray) -> None:
    layers = [FLATTEN, _dense(64, activation), _dense(32, activation), SOFTMAX_10]
    _assert_answers_as_tensorflow(_built(batchnorm_spec(layers=layers)), images)


@pytest.mark.parametrize(
    "layer",
    [
        {"type": "LeakyReLU", "negative_slope": 0.1},
        {"type": "ELU", "alpha": 0.7},
        {"type": "ReLU"},
        {"type": "ReLU", "max_value": 0.5},
        {"type": "PReLU"},
        {"type": "Activation", "activation": "tanh"},
        {"type": "BatchNormalization"},
        {"type": "Dropout", "rate": 0.5},
        {"type": "AlphaDropout", "rate": 0.3},
    ],
    ids=lambda layer: "-".join(str(value) for value in layer.values()),
)
def test_every_layer_answers_as_tensorflow(layer: Spec, images: np.ndarray) -> None:
    layers = [FLATTEN, _dense(64), layer, _dense(32, "relu"), SOFTMAX_10]
    _assert_answers_as_tensorflow(_built(batchnorm_spec(layers=layers)), images)


def test_dense_on_rows_and_a_reshape_answer_as_tensorflow(images: np.ndarray) -> None:
    layers = [
        _dense(16, "relu"),  # on each of the 28 rows
        {"type": "Reshape", "target_shape": [448]},
        _dense(32, "relu", use_bias=False),
        SOFTMAX_10,
    ]
    _assert_answers_as_tensorflow(_built(batchnorm_spec(layers=layers)), images)


def test_a_trained_net_is_served_by_numpy_with_tensorflows_answers(images: np.ndarray) -> None:
    spec = ExperimentCreate.model_validate(batchnorm_spec(fit={"epochs": 1, "train_size": 2000}))
    model = train(
        spec, split(load_mnist(MNIST_PATH), validation_size=0, train_size=2000), evaluate=False
    ).model

    predictor = Predictor(model)

    assert predictor.numpy
    assert not predictor.frozen  # no graph traced and frozen for a net numpy serves
    expected = np.asarray(model(images, training=False))
    np.testing.assert_allclose(predictor.predict(images), expected, atol=FLOAT32_TOLERANCE)
    assert np.array_equal(predictor.predict(images).argmax(axis=1), expected.argmax(axis=1))


def test_a_net_with_a_layer_numpy_lacks_keeps_tensorflow(images: np.ndarray) -> None:
    model = _built(conv_spec())

    predictor = Predictor(model)

    assert numpy_forward(model) is None
    assert not predictor.numpy
    np.testing.assert_allclose(
        predictor.predict(images[:5]), np.asarray(model(images[:5], training=False)), atol=1e-5
    )


def test_a_numpy_pass_that_disagrees_is_not_served(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, images: np.ndarray
) -> None:
    broken = dict(ACTIVATIONS, relu=lambda x: np.maximum(x, 0) * np.float32(1.01))
    monkeypatch.setattr(numpy_forward_module, "ACTIVATIONS", broken)
    model = _built(batchnorm_spec())

    with caplog.at_level(logging.WARNING):
        predictor = Predictor(model)

    assert not predictor.numpy
    assert "disagrees with TensorFlow" in caplog.text
    np.testing.assert_allclose(
        predictor.predict(images[:5]), np.asarray(model(images[:5], training=False)), atol=1e-5
    )
