"""The two ways to run `fit` (TRAINING_PATH): exact (TensorFlow's kernels) and xla.

XLA compiles each step and orders its arithmetic its own way, so its history is the exact
path's to about 1e-5, not bit for bit; it must still be bit-identical run to run, and a
training resumed from a checkpoint must go on with XLA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pytest

from service.domain import EpochRecord
from service.insight.layers import LayerStats
from service.ml.data import Split, load_mnist, split
from service.ml.train import Resume, TrainingResult, train, uses_xla
from service.schemas.experiments import ExperimentCreate
from service.spec.experiment import ExperimentSpec
from tests.factories import Spec, batchnorm_spec, dropout_spec, leaky_relu_spec
from tests.helpers import MNIST_PATH

SMALL = {"epochs": 2, "train_size": 2000, "validation_size": 500}


def spec_of(body: Spec) -> ExperimentSpec:
    return ExperimentCreate.model_validate(body)


@pytest.fixture(scope="module")
def data() -> Split:
    return split(load_mnist(MNIST_PATH), validation_size=500, train_size=2000)


def values(result: TrainingResult) -> np.ndarray:
    return np.array(
        [[r.loss, r.accuracy, r.val_loss, r.val_accuracy] for r in result.history], dtype=float
    )


@dataclass
class Checkpointer:
    """Hooks that save the model after the first epoch, as the worker's checkpoints do."""

    path: Path
    saved: list[EpochRecord] = field(default_factory=list)

    def stop_requested(self) -> bool:
        return False

    def epoch_finished(
        self, model: keras.Model, record: EpochRecord, history: list[EpochRecord]
    ) -> bool:
        if record.epoch == 1:
            model.save(self.path)
            self.saved = list(history)
        return True

    def layers_measured(self, epoch: int, layers: list[LayerStats]) -> None:
        return None


def test_xla_is_used_only_when_asked_and_never_for_nets_with_random_layers() -> None:
    assert uses_xla(spec_of(leaky_relu_spec()), xla=True)
    assert uses_xla(spec_of(batchnorm_spec()), xla=True)
    assert not uses_xla(spec_of(leaky_relu_spec()), xla=False)
    assert not uses_xla(spec_of(dropout_spec()), xla=True)


def test_the_default_path_is_exact_and_says_so(data: Split) -> None:
    result = train(spec_of(leaky_relu_spec(fit=SMALL)), data, evaluate=False)
    assert result.model.jit_compile is False
    assert result.versions["kernels"] == "TensorFlow"  # recorded: a rerun and export compare it


def test_xla_is_reproducible_and_within_1e_4_of_the_exact_path(data: Split) -> None:
    spec = spec_of(leaky_relu_spec(fit=SMALL))
    exact = train(spec, data, evaluate=False)
    first, again = (train(spec, data, evaluate=False, xla=True) for _ in range(2))
    assert first.model.jit_compile is True
    assert first.versions["kernels"] == "XLA"
    np.testing.assert_array_equal(values(first), values(again))
    losses = [0, 2]  # an accuracy may differ by an image whose two top scores nearly tie
    np.testing.assert_allclose(values(first)[:, losses], values(exact)[:, losses], atol=1e-4)


def test_a_resumed_xla_training_goes_on_with_xla_reproducibly(data: Split, tmp_path: Path) -> None:
    spec = spec_of(leaky_relu_spec(fit=SMALL))
    hooks = Checkpointer(tmp_path / "checkpoint.keras")
    train(spec, data, hooks=hooks, evaluate=False, xla=True)
    resumed = [
        train(
            spec,
            data,
            resume=Resume(keras.models.load_model(hooks.path), list(hooks.saved)),
            evaluate=False,
            xla=True,
        )
        for _ in range(2)
    ]
    assert all(result.model.jit_compile is True for result in resumed)
    assert [record.epoch for record in resumed[0].history] == [1, 2]
    np.testing.assert_array_equal(values(resumed[0]), values(resumed[1]))
