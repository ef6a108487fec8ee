"""What a warm process's jobs leave behind in Keras and TensorFlow (service/ml/session.py): the
graphs of a train function a kept model replaced go with the job, and a save does not build
Keras's skip-sets again."""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from service.ml.data import Split, load_mnist, split
from service.ml.session import forget_job, save_model
from service.ml.traced import TracedModels
from service.ml.train import train
from service.spec.experiment import ExperimentSpec
from tests.helpers import MNIST_PATH

LAYERS = [
    {"type": "Flatten"},
    {"type": "Dense", "units": 16, "activation": "relu"},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]


def spec(optimizer: str) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "layers": LAYERS,
            "compile": {"optimizer": {"type": optimizer, "learning_rate": 0.01}},
            "fit": {"epochs": 1, "batch_size": 64, "train_size": 256, "validation_size": 64},
        }
    )


@lru_cache(maxsize=1)
def small_split() -> Split:
    return split(load_mnist(MNIST_PATH), validation_size=64, train_size=256)


def traced_graphs(train_function: Callable[..., Any]) -> list[weakref.ref[Any]]:
    """Weak references to the graphs TensorFlow traced for Keras's train function: its loop of
    steps, and the step (`one_step_on_data`, under Keras's wrapper), which holds the
    optimizer's update."""
    closure = inspect.getclosurevars(train_function).nonlocals
    functions = [closure["multi_step_on_iterator"], closure["one_step_on_data"].__wrapped__]
    graphs = [
        concrete.graph for traced in functions for concrete in traced._list_all_concrete_functions()
    ]
    assert graphs
    return [weakref.ref(graph) for graph in graphs]


def test_a_train_function_a_kept_model_replaced_goes_with_its_job() -> None:
    """TensorFlow's gradient registry held every replaced train function's graph: ~4,000
    objects more per job, walked by every later collection."""
    traced = TracedModels()
    first = train(spec("SGD"), small_split(), traced=traced, evaluate=False)
    replaced = traced_graphs(first.model.train_function)
    del first
    forget_job()

    again = train(spec("Adam"), small_split(), traced=traced, evaluate=False)  # retraced
    assert traced.reused == 1
    kept = traced_graphs(again.model.train_function)
    del again
    forget_job()

    assert [graph() for graph in replaced] == [None] * len(replaced)
    assert all(graph() is not None for graph in kept)  # the kept model's own stays


def test_a_kept_models_train_function_still_trains_after_its_job_is_forgotten() -> None:
    """Dropping the registered gradients leaves a traced train function that trains."""
    traced = TracedModels()
    train(spec("SGD"), small_split(), traced=traced, evaluate=False)
    forget_job()
    kept = train(spec("SGD"), small_split(), traced=traced, evaluate=False)
    forget_job()
    fresh = train(spec("SGD"), small_split(), evaluate=False)
    forget_job()
    assert traced.reused == 1
    assert kept.history[0].loss == fresh.history[0].loss


def trained_model() -> keras.Model:
    return train(spec("Adam"), small_split(), evaluate=False).model


def test_a_save_builds_no_reference_objects_once_the_process_has_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keras 3.15 built a reference Layer, Metric, Optimizer... for every save (it caches
    them under one name and reads another); a job's session, cleared after it, kept none."""
    model = trained_model()
    save_model(model, tmp_path / "first.keras")
    keras.backend.clear_session()  # as between two jobs
    made: list[type] = []
    layer_init = keras.layers.Layer.__init__

    def counted(self: keras.layers.Layer, *args: Any, **kwargs: Any) -> None:
        made.append(type(self))
        layer_init(self, *args, **kwargs)

    monkeypatch.setattr(keras.layers.Layer, "__init__", counted)
    save_model(model, tmp_path / "second.keras")
    monkeypatch.undo()

    assert made == []
    loaded = keras.models.load_model(tmp_path / "second.keras")
    saved = [*model.variables, *model.optimizer.variables]
    restored = [*loaded.variables, *loaded.optimizer.variables]
    assert len(saved) == len(restored)
    for mine, theirs in zip(saved, restored, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
