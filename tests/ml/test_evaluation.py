"""The test set's evaluation runs the model's own predict function over `predict`'s batches:
the probabilities are `model.predict`'s bit for bit, without its tf.data pipeline, and a
model kept for the next job (traced.py) evaluates again without tracing anything."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from service.insight.evaluation import evaluate_probabilities
from service.ml.data import Split, load_mnist, split
from service.ml.evaluation import EVALUATION_BATCH, evaluate_model, predict_probabilities
from service.ml.inference import load_keras_model
from service.ml.train import train
from service.spec.experiment import ExperimentSpec
from service.spec.notebook import NETS, notebook_spec
from tests.helpers import MNIST_PATH

# 10,000 test images in batches of 1,024 leave a last batch of 784.
assert len(range(0, 10_000, EVALUATION_BATCH)) * EVALUATION_BATCH != 10_000


@lru_cache(maxsize=1)
def small_split() -> Split:
    return split(load_mnist(MNIST_PATH), validation_size=500, train_size=1000)


def trained(net: str, *, xla: bool = False) -> keras.Model:
    """The notebook's net after an epoch on 1,000 images (BatchNormalization's statistics
    moved), compiled as a training compiles it (steps_per_execution 64)."""
    spec: dict[str, Any] = notebook_spec(net)
    spec["fit"] |= {"epochs": 1, "train_size": 1000, "validation_size": 500}
    return train(ExperimentSpec.model_validate(spec), small_split(), evaluate=False, xla=xla).model


def no_predict(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the evaluation built model.predict's tf.data pipeline")


@pytest.mark.parametrize("net", NETS)
def test_the_evaluation_is_model_predicts_bit_for_bit(
    net: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = trained(net)
    x_test, y_test = small_split().x_test, small_split().y_test
    expected = np.asarray(model.predict(x_test, batch_size=EVALUATION_BATCH, verbose=0))
    reference = evaluate_probabilities(expected, y_test, np.rint(x_test * 255).astype(np.uint8))
    monkeypatch.setattr(model, "predict", no_predict)
    assert evaluate_model(model, x_test, y_test) == reference


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_batches_go_in_predicts_groups(steps_per_execution: int) -> None:
    """One batch per call, and 4 per call (10 batches: a last call of 2, a last batch short)."""
    model = trained("batchnorm")
    model.steps_per_execution = steps_per_execution
    model.predict_function = None  # traced for 64 per call
    x_test = small_split().x_test
    expected = np.asarray(model.predict(x_test, batch_size=EVALUATION_BATCH, verbose=0))
    found = predict_probabilities(model, x_test, batch_size=EVALUATION_BATCH)
    assert found.dtype == expected.dtype
    assert np.array_equal(found, expected)


def test_xla_steps_evaluate_as_xla_predicts() -> None:
    model = trained("leaky_relu", xla=True)
    assert model.jit_compile
    x_test = small_split().x_test
    expected = np.asarray(model.predict(x_test, batch_size=EVALUATION_BATCH, verbose=0))
    found = predict_probabilities(model, x_test, batch_size=EVALUATION_BATCH)
    assert np.array_equal(found, expected)


def test_a_kept_model_evaluates_again_without_tracing() -> None:
    model = trained("leaky_relu")
    x_test, y_test = small_split().x_test, small_split().y_test
    first = evaluate_model(model, x_test, y_test)
    second = evaluate_model(model, x_test, y_test)
    assert first == second
    assert model.predict_function.experimental_get_tracing_count() == 1


def test_a_model_loaded_for_inference_evaluates_as_predict_does(tmp_path: Path) -> None:
    """The worker's evaluation of an older experiment loads its model uncompiled (one batch
    per call, no optimizer)."""
    trained("leaky_relu").save(tmp_path / "model.keras")
    model = load_keras_model(tmp_path / "model.keras")
    x_test = small_split().x_test
    expected = np.asarray(model.predict(x_test, batch_size=EVALUATION_BATCH, verbose=0))
    found = predict_probabilities(model, x_test, batch_size=EVALUATION_BATCH)
    assert np.array_equal(found, expected)
