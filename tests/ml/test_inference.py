"""Serving: the compiled forward pass, the model cache, and one digit for every input form."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from service.images import base64_bytes, decode_image, pixels_to_array
from service.ml.build import build_model
from service.ml.data import load_mnist, split
from service.ml.inference import ModelCache, Predictor, load_keras_model
from service.ml.train import train
from service.schemas.experiments import ExperimentCreate
from tests.factories import (
    Spec,
    batchnorm_spec,
    conv_spec,
    dropout_spec,
    leaky_relu_spec,
    tiny_spec,
)
from tests.helpers import MNIST_PATH

LIMITS = {"max_bytes": 4 * 1024 * 1024, "max_pixels": 25_000_000}


@pytest.fixture(scope="module")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    data = load_mnist(MNIST_PATH)
    return data.x_test, data.y_test


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Flatten -> Dense 10 softmax, two epochs on 10,000 images (~90%), the service's way."""
    spec = ExperimentCreate.model_validate(tiny_spec(epochs=2, train_size=10_000))
    data = split(load_mnist(MNIST_PATH), validation_size=0, train_size=10_000)
    result = train(spec, data, evaluate=False)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    result.model.save(path)
    return path


@pytest.fixture(scope="module")
def predictor(saved_model: Path) -> Predictor:
    return ModelCache(capacity=1).get("tiny", lambda: load_keras_model(saved_model))


def small_model(units: int = 10) -> keras.Model:
    return keras.Sequential(
        [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(units, "softmax")]
    )


def test_predictor_matches_calling_the_model(
    predictor: Predictor, mnist_test: tuple[np.ndarray, np.ndarray]
) -> None:
    images = (mnist_test[0][:64] / 255.0).astype(np.float32)

    for batch in (images[:1], images[:7], images):
        expected = np.asarray(predictor.model(batch, training=False))

        probabilities = predictor.predict(batch)

        assert probabilities.shape == (len(batch), 10)
        np.testing.assert_allclose(probabilities, expected, atol=1e-6)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_trained_model_reads_mnist(
    predictor: Predictor, mnist_test: tuple[np.ndarray, np.ndarray]
) -> None:
    images, labels = mnist_test
    probabilities = predictor.predict((images[:1000] / 255.0).astype(np.float32))

    assert (probabilities.argmax(axis=1) == labels[:1000]).mean() > 0.85


def test_predictor_refuses_a_wrong_batch_shape(predictor: Predictor) -> None:
    for shape in [(28, 28), (1, 28, 27), (1, 784)]:
        with pytest.raises(ValueError, match=r"expected a batch of shape \(n, 28, 28\)"):
            predictor.predict(np.zeros(shape, dtype=np.float32))


def test_predictor_refuses_a_model_without_ten_probabilities() -> None:
    with pytest.raises(ValueError, match="serving needs 10 probabilities"):
        Predictor(small_model(units=5))


class CountingLayer(keras.layers.Layer):
    """Passes images through, counting how often Python runs its `call`."""

    calls = 0

    def call(self, inputs: object) -> object:
        CountingLayer.calls += 1
        return inputs


def test_the_forward_pass_is_compiled_once_not_run_per_request() -> None:
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            CountingLayer(),
            keras.layers.Flatten(),
            keras.layers.Dense(10, "softmax"),
        ]
    )
    CountingLayer.calls = 0
    predictor = Predictor(model)
    traced = CountingLayer.calls

    for size in (1, 7, 64, 1, 3):
        predictor.predict(np.zeros((size, 28, 28), dtype=np.float32))

    assert traced >= 1
    assert CountingLayer.calls == traced  # every batch size ran the one compiled graph


def _with_random_batchnorm_statistics(model: keras.Model) -> keras.Model:
    """Moving means and variances away from 0 and 1, so using batch statistics would show."""
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 2.0, gamma.shape),
                    rng.normal(0.0, 0.5, beta.shape),
                    rng.normal(0.0, 0.5, mean.shape),
                    rng.uniform(0.5, 2.0, variance.shape),
                ]
            )
    return model


@pytest.mark.parametrize(
    "factory",
    [leaky_relu_spec, batchnorm_spec, dropout_spec, conv_spec],
    ids=["leaky_relu", "batchnorm", "dropout", "conv"],
)
def test_every_layer_family_is_served_from_a_frozen_graph(factory: Callable[[], Spec]) -> None:
    model = _with_random_batchnorm_statistics(
        build_model(ExperimentCreate.model_validate(factory()))
    )
    images = np.random.default_rng(1).random((9, 28, 28), dtype=np.float32)

    predictor = Predictor(model, allow_numpy=False)

    assert predictor.frozen
    expected = np.asarray(model(images, training=False))
    np.testing.assert_allclose(predictor.predict(images), expected, atol=1e-5)
    # Inference mode: dropout off, batch norm on its moving statistics, one image at a time
    # answered as in a batch.
    np.testing.assert_allclose(predictor.predict(images[:1]), expected[:1], atol=1e-5)


def test_a_graph_that_cannot_be_frozen_is_served_by_the_traced_function(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(traced: object) -> None:
        raise ValueError("this graph cannot be frozen")

    monkeypatch.setattr("service.ml.inference.frozen_forward", refuse)
    model = small_model()
    images = np.random.default_rng(2).random((5, 28, 28), dtype=np.float32)

    predictor = Predictor(model, allow_numpy=False)

    assert not predictor.frozen
    assert "this graph cannot be frozen" in caplog.text
    np.testing.assert_allclose(
        predictor.predict(images), np.asarray(model(images, training=False)), atol=1e-6
    )


# -- every input form, the same answer -------------------------------------------------------


def _encode(pixels: np.ndarray, image_format: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, image_format, **options)
    return buffer.getvalue()


def _forms(digit: np.ndarray) -> dict[str, np.ndarray]:
    """The same MNIST digit as each input form the API takes, converted for the model."""
    big = 255 - np.kron(digit, np.ones((10, 10), dtype=np.uint8))
    on_paper = np.pad(big, 40, constant_values=255)
    png = _encode(on_paper)
    return {
        "nested 0-255": pixels_to_array(digit.tolist(), "auto")[0],
        "flat 0-255": pixels_to_array(digit.reshape(-1).tolist(), "0-255")[0],
        "nested 0-1": pixels_to_array((digit / 255.0).tolist(), "auto")[0],
        "flat 0-1": pixels_to_array((digit / 255.0).reshape(-1).tolist(), "0-1")[0],
        "PNG 28x28": decode_image(_encode(digit), **LIMITS),
        "PNG 10x, black on white": decode_image(png, **LIMITS),
        "JPEG 10x, black on white": decode_image(_encode(on_paper, "JPEG", quality=85), **LIMITS),
        "base64 data URL": decode_image(
            base64_bytes(
                "data:image/png;base64," + base64.b64encode(png).decode(),
                max_bytes=LIMITS["max_bytes"],
            ),
            **LIMITS,
        ),
    }


def test_every_input_form_gives_the_same_digit(
    predictor: Predictor, mnist_test: tuple[np.ndarray, np.ndarray]
) -> None:
    images, labels = mnist_test
    probabilities = predictor.predict((images[:100] / 255.0).astype(np.float32))
    right = probabilities.argmax(axis=1) == labels[:100]
    chosen = np.flatnonzero(right & (probabilities.max(axis=1) > 0.9))[:6]
    assert len(chosen) >= 4  # clear cases: any form that is read wrongly changes the answer

    for index in chosen:
        forms = _forms(images[index])
        probabilities = predictor.predict(np.stack(list(forms.values())))
        answers = dict(zip(forms, probabilities.argmax(axis=1).tolist(), strict=True))

        assert set(answers.values()) == {int(labels[index])}, answers
        # The pixel lists are the very array the model trained on: the same probabilities.
        np.testing.assert_allclose(probabilities[:4], probabilities[[0, 0, 0, 0]], atol=1e-6)


# -- the cache ---------------------------------------------------------------------------------


class CountingLoader:
    """Loaders that build a small untrained model, counting (and optionally slowing) calls."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str) -> Callable[[], keras.Model]:
        def load() -> keras.Model:
            with self._lock:
                self.calls[key] = self.calls.get(key, 0) + 1
            time.sleep(self.delay)
            return small_model()

        return load


def test_cache_evicts_the_least_recently_used() -> None:
    cache, loader = ModelCache(capacity=2), CountingLoader()

    first = cache.get("a", loader("a"))
    cache.get("b", loader("b"))
    assert cache.get("a", loader("a")) is first  # a is now the most recent
    cache.get("c", loader("c"))

    assert cache.keys() == ["a", "c"]
    assert len(cache) == 2
    assert "b" not in cache
    assert loader.calls == {"a": 1, "b": 1, "c": 1}
    cache.get("b", loader("b"))
    assert cache.keys() == ["c", "b"]
    assert loader.calls["b"] == 2


def test_cache_never_exceeds_its_capacity() -> None:
    cache, loader = ModelCache(capacity=3), CountingLoader()

    for step, key in enumerate("abcdabefgaah"):
        cache.get(key, loader(key))
        assert len(cache) == min(3, step + 1)
        assert cache.keys()[-1] == key


def test_concurrent_requests_for_one_model_load_it_once() -> None:
    cache, loader = ModelCache(capacity=2), CountingLoader(delay=0.3)
    start = threading.Barrier(8)
    results: list[Predictor] = []

    def request() -> None:
        start.wait()
        results.append(cache.get("a", loader("a")))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert loader.calls == {"a": 1}
    assert len(results) == 8
    assert all(result is results[0] for result in results)


def test_a_failed_load_reaches_every_waiter_and_is_retried() -> None:
    cache = ModelCache(capacity=2)
    start = threading.Barrier(4)
    errors: list[BaseException] = []
    calls = 0

    def broken() -> keras.Model:
        nonlocal calls
        calls += 1
        time.sleep(0.3)
        raise FileNotFoundError("model.keras is gone")

    def request() -> None:
        start.wait()
        try:
            cache.get("a", broken)
        except FileNotFoundError as error:
            errors.append(error)

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert calls == 1
    assert len(errors) == 4
    assert len(cache) == 0
    cache.get("a", small_model)
    assert cache.keys() == ["a"]


def test_evict_forgets_a_model() -> None:
    cache = ModelCache(capacity=2)
    cache.get("a", small_model)

    assert cache.evict("a") is True
    assert cache.evict("a") is False
    assert len(cache) == 0


def test_a_model_evicted_while_loading_is_served_but_not_kept() -> None:
    cache = ModelCache(capacity=2)
    started, release = threading.Event(), threading.Event()
    served: list[Predictor] = []

    def slow_load() -> keras.Model:
        started.set()
        release.wait(timeout=60)
        return small_model()

    loading = threading.Thread(target=lambda: served.append(cache.get("b", slow_load)))
    loading.start()
    assert started.wait(timeout=60)
    cache.evict("b")  # say its experiment was deleted meanwhile
    release.set()
    loading.join(timeout=60)

    assert len(served) == 1
    assert "b" not in cache
