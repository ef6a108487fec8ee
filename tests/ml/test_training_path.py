"""The two ways to run `fit` (TRAINING_PATH): exact (TensorFlow's kernels) and xla.

XLA compiles each step and orders its arithmetic its own way, so its history is the exact
path's to about 1e-5, not bit for bit; it must still be bit-identical run to run, and a
training resumed from a checkpoint must go on with XLA. The xla path runs its own compiled
loop (service/ml/compiled_epochs.py), which must give `fit(jit_compile=True)`'s history bit for
bit, and resume exactly where an uninterrupted training would be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pytest

from service.domain import EpochRecord
from service.insight.layers import LayerStats
from service.ml.build import build_model, compile_model
from service.ml.data import Split, load_mnist, split
from service.ml.train import (
    STEPS_PER_EXECUTION,
    NoHooks,
    Resume,
    TrainingResult,
    train,
    uses_xla,
)
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


def keras_fit_with_jit_compile(
    spec: ExperimentSpec, data: Split, callbacks: list[keras.callbacks.Callback] | None = None
) -> tuple[np.ndarray, keras.Model]:
    """The history plain Keras gives with XLA: the notebook's fit with jit_compile=True."""
    keras.utils.set_random_seed(spec.fit.seed)
    model = build_model(spec)
    compile_model(model, spec, steps_per_execution=STEPS_PER_EXECUTION, jit_compile=True)
    history = model.fit(
        data.x_train,
        data.y_train,
        batch_size=spec.fit.batch_size,
        epochs=spec.fit.epochs,
        validation_data=(data.x_valid, data.y_valid),
        callbacks=callbacks,
        verbose=0,
    ).history
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    return np.array([history[key] for key in keys]).T, model


@pytest.mark.parametrize("net", [leaky_relu_spec, batchnorm_spec])
def test_xla_trains_in_its_compiled_loop_exactly_as_fit_with_jit_compile(
    net: Callable[..., Spec], data: Split
) -> None:
    # 2,000 images: 62 batches of 32 and a last one of 16, shuffled as fit shuffles them.
    spec = spec_of(net(fit=SMALL | {"epochs": 3}))
    result = train(spec, data, evaluate=False, xla=True)
    assert result.model.train_function is None  # model.fit never ran
    np.testing.assert_array_equal(values(result), keras_fit_with_jit_compile(spec, data)[0])


def test_the_compiled_loop_drives_keras_callbacks_as_fit_does(data: Split) -> None:
    # The rate halves after every epoch; training stops once val_loss gains less than 0.05 for
    # two epochs, and the best epoch's weights come back at the end.
    early = {"patience": 1, "min_delta": 0.05, "restore_best_weights": True}
    plateau = {"factor": 0.5, "patience": 0, "min_delta": 10.0}
    fit = SMALL | {"epochs": 6, "early_stopping": early, "reduce_lr_on_plateau": plateau}
    spec = spec_of(leaky_relu_spec(fit=fit))
    result = train(spec, data, evaluate=False, xla=True)
    callbacks = [
        keras.callbacks.EarlyStopping(**early, monitor="val_loss", mode="min"),
        keras.callbacks.ReduceLROnPlateau(**plateau, monitor="val_loss", mode="min"),
    ]
    expected, model = keras_fit_with_jit_compile(spec, data, callbacks)
    assert 1 < len(result.history) < 6
    np.testing.assert_array_equal(values(result), expected)
    for mine, theirs in zip(result.model.weights, model.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


@dataclass
class StopAfter(NoHooks):
    """Hooks that ask to stop after `calls` checks (one per graph call)."""

    calls: int
    checks: int = 0

    def stop_requested(self) -> bool:
        self.checks += 1
        return self.checks > self.calls


def test_a_stop_is_seen_between_the_compiled_calls(data: Split) -> None:
    spec = spec_of(leaky_relu_spec(fit=SMALL))
    hooks = StopAfter(calls=2)
    result = train(spec, data, hooks=hooks, evaluate=False, xla=True, steps_per_execution=8)
    assert result.stopped
    assert hooks.checks == 3  # 3 calls of 8 batches of an epoch's 63, then no more
    assert result.history == []  # a partial epoch is not an epoch


def test_a_resumed_xla_training_equals_the_uninterrupted_one(data: Split, tmp_path: Path) -> None:
    spec = spec_of(leaky_relu_spec(fit=SMALL))
    hooks = Checkpointer(tmp_path / "checkpoint.keras")
    uninterrupted = train(spec, data, hooks=hooks, evaluate=False, xla=True)
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
    # The compiled loop draws every epoch's order from the spec's seed, as the first run did.
    np.testing.assert_array_equal(values(resumed[0]), values(uninterrupted))
