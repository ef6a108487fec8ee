"""A warm training process trains a job of an architecture it already trained on the model it
kept (service/ml/traced.py): every number is the one a new model gives, and TensorFlow never
has to retrace Keras's functions for it."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import keras
import pytest

from service.ml.data import Split, load_mnist, split
from service.ml.traced import TracedModels
from service.ml.train import TrainingResult, train
from service.spec.experiment import ExperimentSpec
from service.spec.notebook import notebook_spec
from service.studies.presets import OPTIMIZERS
from tests.helpers import MNIST_PATH, KeptMessages

FIT = {"epochs": 2, "batch_size": 64, "train_size": 1000, "validation_size": 500}
# Every kind of state a job could leave behind: weights, BatchNormalization's statistics, a
# Dropout's seed generator, the optimizer's moments and step, a learning rate a callback lowered.
LAYERS = [
    {"type": "Flatten"},
    {"type": "Dense", "units": 32, "activation": "relu"},
    {"type": "BatchNormalization"},
    {"type": "Dropout", "rate": 0.3},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]
SGD = {"type": "SGD", "learning_rate": 0.05, "momentum": 0.9}
ADAM = {"type": "Adam", "learning_rate": 0.01}


def spec(optimizer: dict[str, Any], *, seed: int, layers: list[Any] = LAYERS) -> ExperimentSpec:
    fit = FIT | {
        "seed": seed,
        "reduce_lr_on_plateau": {"factor": 0.5, "patience": 0, "min_delta": 10.0},
    }
    return ExperimentSpec.model_validate(
        {"layers": layers, "compile": {"optimizer": optimizer}, "fit": fit}
    )


@lru_cache(maxsize=1)
def small_split() -> Split:
    return split(load_mnist(MNIST_PATH), validation_size=500, train_size=1000)


def numbers(result: TrainingResult) -> list[Any]:
    epochs = [
        (e.loss, e.accuracy, e.val_loss, e.val_accuracy, e.learning_rate) for e in result.history
    ]
    return [epochs, result.test_loss, result.test_accuracy]


def job(spec: ExperimentSpec, traced: TracedModels | None, *, xla: bool = False) -> TrainingResult:
    """One job as a warm process runs it, Keras's session cleared after it."""
    result = train(spec, small_split(), traced=traced, xla=xla)
    keras.backend.clear_session()
    gc.collect()
    return result


def test_a_kept_model_gives_every_number_a_new_model_gives(tmp_path: Path) -> None:
    jobs = [
        spec(SGD, seed=1),
        spec(ADAM, seed=2),  # another optimizer: the kept model takes the job's own
        spec(SGD, seed=3),
        spec(SGD, seed=1),  # the same optimizer: its train function is kept too
        spec(ADAM, seed=4, layers=[LAYERS[0], LAYERS[-1]]),  # another architecture
        spec(ADAM, seed=2),
        spec(ADAM, seed=5),  # Adam's step count and moments, reset
    ]
    traced = TracedModels()
    kept = [job(each, traced) for each in jobs]
    assert traced.reused == 5
    for each, result in zip(jobs, kept, strict=True):
        assert numbers(result) == numbers(job(each, None))
    # What it saves is compiled with the job's optimizer, not the kept model's first.
    kept[-1].model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.optimizer).__name__ == "Adam"


def test_a_kept_model_on_the_xla_path_gives_every_number_a_new_model_gives() -> None:
    """The xla path's compiled loop is kept with the model for the optimizer it was traced
    with (service/ml/compiled_epochs.py); another optimizer gets a loop of its own."""
    without_dropout = [layer for layer in LAYERS if layer["type"] != "Dropout"]
    jobs = [
        spec(SGD, seed=1, layers=without_dropout),
        spec(SGD, seed=3, layers=without_dropout),  # the same optimizer: the loop is kept
        spec(ADAM, seed=2, layers=without_dropout),  # another: a loop traced for Adam
    ]
    traced = TracedModels()
    kept = [job(each, traced, xla=True) for each in jobs]
    assert traced.reused == 2
    for each, result in zip(jobs, kept, strict=True):
        assert result.versions["kernels"] == "XLA"
        assert numbers(result) == numbers(job(each, None, xla=True))


@pytest.fixture
def tensorflow_warnings() -> Iterator[list[str]]:
    kept = KeptMessages()
    tensorflow_log = logging.getLogger("tensorflow")
    tensorflow_log.addHandler(kept)
    try:
        yield kept.messages
    finally:
        tensorflow_log.removeHandler(kept)


def test_a_study_of_one_epoch_trials_never_retraces(tensorflow_warnings: list[str]) -> None:
    """The optimizers preset at one epoch, trial after trial in one process: TensorFlow warned
    that Keras's predict and evaluate functions retraced too often when each trial traced its
    own."""
    traced = TracedModels()
    for variant in OPTIMIZERS:
        trial = notebook_spec("leaky_relu")
        trial["compile"]["optimizer"] = variant.value
        trial["fit"] |= {"epochs": 1, "train_size": 1000, "validation_size": 500}
        job(ExperimentSpec.model_validate(trial), traced)
    assert traced.reused == len(OPTIMIZERS) - 1
    retraced = [message for message in tensorflow_warnings if "retracing" in message]
    assert not retraced, retraced
