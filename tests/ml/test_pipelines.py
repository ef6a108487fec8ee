"""`fit`'s input pipelines, kept from one training to the next over the same arrays
(service/ml/pipelines.py): the histories stay the notebook's `model.fit(x, y)`'s bit for bit,
seed by seed, and Keras builds each pipeline once."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

from service.domain import EpochRecord
from service.ml import pipelines
from service.ml.build import build_model, compile_model
from service.ml.data import Split, load_mnist, split
from service.ml.train import STEPS_PER_EXECUTION, NoHooks, Resume, train
from service.spec.experiment import ExperimentSpec
from tests.helpers import MNIST_PATH

LAYERS = [
    {"type": "Flatten"},
    {"type": "Dense", "units": 16, "activation": "relu"},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]


def spec(seed: int) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "layers": LAYERS,
            "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.01}},
            "fit": {
                "epochs": 2,
                "batch_size": 64,
                "train_size": 500,
                "validation_size": 100,
                "seed": seed,
            },
        }
    )


@pytest.fixture(scope="module")
def data() -> Split:
    return split(load_mnist(MNIST_PATH), validation_size=100, train_size=500)


def notebook_history(each: ExperimentSpec, data: Split) -> list[list[float]]:
    """The notebook's `model.fit` over the arrays."""
    keras.utils.set_random_seed(each.fit.seed)
    model = build_model(each)
    compile_model(model, each, steps_per_execution=STEPS_PER_EXECUTION)
    history = model.fit(
        data.x_train,
        data.y_train,
        batch_size=each.fit.batch_size,
        epochs=each.fit.epochs,
        validation_data=(data.x_valid, data.y_valid),
        verbose=0,
    ).history
    return [history[key] for key in ("loss", "accuracy", "val_loss", "val_accuracy")]


def service_history(each: ExperimentSpec, data: Split) -> list[list[float]]:
    result = train(each, data, evaluate=False)
    return [
        [getattr(record, key) for record in result.history]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy")
    ]


@pytest.fixture(autouse=True)
def nothing_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process does."""
    monkeypatch.setattr(pipelines, "_kept", OrderedDict())


@pytest.fixture
def pipelines_built(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    built: list[Any] = []
    build = ArrayDataAdapter.get_tf_dataset

    def counted(adapter: ArrayDataAdapter) -> Any:
        built.append(adapter)
        return build(adapter)

    monkeypatch.setattr(ArrayDataAdapter, "get_tf_dataset", counted)
    return built


def test_trainings_over_the_same_split_and_seed_build_fits_pipelines_once(
    data: Split, pipelines_built: list[Any]
) -> None:
    first = service_history(spec(seed=7), data)
    assert len(pipelines_built) == 2  # the training set's, the validation set's
    again = service_history(spec(seed=7), data)
    assert len(pipelines_built) == 2
    assert again == first


def test_kept_pipelines_train_the_notebooks_history_seed_by_seed(data: Split) -> None:
    """Each seed shuffles its own way, as `fit` does; the validation pipeline is shared."""
    for seed in (7, 8, 7, 8):
        assert service_history(spec(seed), data) == notebook_history(spec(seed), data)


def test_writable_arrays_are_never_kept(data: Split, pipelines_built: list[Any]) -> None:
    """A pipeline holds a copy of its arrays: one written in place would train on old numbers."""
    writable = Split(*(np.array(array) for array in vars(data).values()))
    before = service_history(spec(seed=7), writable)
    writable.x_train[:] = writable.x_train[::-1]
    after = service_history(spec(seed=7), writable)
    assert len(pipelines_built) == 4
    assert after != before


def test_a_process_keeps_pipelines_of_small_arrays_only(
    data: Split, pipelines_built: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each holds a copy of its arrays: the notebook's 55,000 images would be 172 MB."""
    monkeypatch.setattr(pipelines, "KEPT_BYTES", data.x_valid.nbytes + data.y_valid.nbytes)
    service_history(spec(seed=9), data)
    service_history(spec(seed=9), data)
    assert len(pipelines_built) == 3  # the validation set's once, the training set's twice


class StopAfterFirstEpoch(NoHooks):
    """Checkpoint the first epoch, then stop, as a training process that is drained."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def epoch_finished(
        self, model: keras.Model, record: EpochRecord, history: list[EpochRecord]
    ) -> bool:
        model.save(self.path)
        return False


def test_a_resumed_training_trains_as_fit_over_the_arrays_resumed(
    data: Split, tmp_path: Path
) -> None:
    """A resumed job's seed moves on by its epochs done: its pipeline is that seed's."""
    each, checkpoint = spec(seed=7), tmp_path / "checkpoint.keras"
    service_history(spec(seed=8), data)  # the seed the resumed epoch's pipeline shares
    done = train(each, data, hooks=StopAfterFirstEpoch(checkpoint), evaluate=False).history
    resumed = train(
        each, data, resume=Resume(keras.models.load_model(checkpoint), done), evaluate=False
    ).history[-1]

    model = keras.models.load_model(checkpoint)
    model.steps_per_execution = STEPS_PER_EXECUTION
    keras.utils.set_random_seed(each.fit.seed + 1)
    logs = model.fit(
        data.x_train,
        data.y_train,
        batch_size=each.fit.batch_size,
        epochs=2,
        initial_epoch=1,
        validation_data=(data.x_valid, data.y_valid),
        verbose=0,
    ).history
    assert [resumed.loss, resumed.accuracy, resumed.val_loss, resumed.val_accuracy] == [
        logs[key][0] for key in ("loss", "accuracy", "val_loss", "val_accuracy")
    ]
