"""Fit a spec on MNIST the notebook's way, reporting and checkpointing after every epoch.

Speed comes from `steps_per_execution` (many batches per graph call: the same maths, far less
Python between steps); results are the notebook's, batch for batch.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import keras
import numpy as np

from service.domain import EpochRecord
from service.ml.build import build_model, compile_model
from service.ml.data import Split
from service.spec.experiment import ExperimentSpec

STEPS_PER_EXECUTION = 64


class TrainingHooks(Protocol):
    """How a training talks to whoever runs it (the worker's training process, a benchmark)."""

    def stop_requested(self) -> bool:
        """Checked between batches; True stops the fit without recording the partial epoch."""
        ...

    def epoch_finished(
        self, model: keras.Model, record: EpochRecord, history: list[EpochRecord]
    ) -> bool:
        """Persist one finished epoch; False stops the fit (cancelled, or the lease is lost)."""
        ...


class NoHooks:
    def stop_requested(self) -> bool:
        return False

    def epoch_finished(
        self, model: keras.Model, record: EpochRecord, history: list[EpochRecord]
    ) -> bool:
        return True


@dataclass
class Resume:
    """A checkpointed model (weights and optimizer state) and the epochs already done."""

    model: keras.Model
    history: list[EpochRecord]

    @property
    def start_epoch(self) -> int:
        return len(self.history)


@dataclass
class TrainingResult:
    model: keras.Model
    history: list[EpochRecord]
    stopped: bool
    test_loss: float | None = None
    test_accuracy: float | None = None
    versions: dict[str, str] = field(default_factory=dict)


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class _Reporter(keras.callbacks.Callback):
    def __init__(self, hooks: TrainingHooks, history: list[EpochRecord], attempt: int) -> None:
        super().__init__()
        self.hooks = hooks
        self.history = history
        self.attempt = attempt
        self.stopped = False
        self._epoch_started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.hooks.stop_requested():
            self.stopped = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.stopped:  # a partial epoch is not an epoch
            return
        logs = logs or {}
        loss = float(logs["loss"])
        record = EpochRecord(
            epoch=epoch + 1,
            loss=loss if math.isfinite(loss) else float("nan"),
            accuracy=_finite_or_none(logs.get("accuracy")),
            val_loss=_finite_or_none(logs.get("val_loss")),
            val_accuracy=_finite_or_none(logs.get("val_accuracy")),
            seconds=time.perf_counter() - self._epoch_started,
            attempt=self.attempt,
        )
        self.history.append(record)
        if not self.hooks.epoch_finished(self.model, record, list(self.history)):
            self.stopped = True
            self.model.stop_training = True


def _early_stopping(spec: ExperimentSpec) -> list[keras.callbacks.Callback]:
    early = spec.fit.early_stopping
    if early is None:
        return []
    return [
        keras.callbacks.EarlyStopping(
            monitor=early.monitor,
            patience=early.patience,
            min_delta=early.min_delta,
            restore_best_weights=early.restore_best_weights,
            mode="min" if early.monitor.endswith("loss") else "max",
        )
    ]


def versions() -> dict[str, str]:
    """The software whose arithmetic a history depends on: a rerun compares these."""
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def prepare_model(
    spec: ExperimentSpec, *, resume: Resume | None, steps_per_execution: int
) -> keras.Model:
    """A fresh seeded model, or the checkpointed one; compiled for training either way."""
    if resume is not None:
        model = resume.model
        # Recompiling would drop the restored optimizer state; only the execution knob changes.
        model.steps_per_execution = steps_per_execution
        return model
    keras.utils.set_random_seed(spec.fit.seed)
    model = build_model(spec)
    compile_model(model, spec, steps_per_execution=steps_per_execution)
    return model


def train(
    spec: ExperimentSpec,
    data: Split,
    *,
    hooks: TrainingHooks | None = None,
    resume: Resume | None = None,
    attempt: int = 1,
    steps_per_execution: int = STEPS_PER_EXECUTION,
    evaluate: bool = True,
) -> TrainingResult:
    hooks = hooks or NoHooks()
    model = prepare_model(spec, resume=resume, steps_per_execution=steps_per_execution)
    history = list(resume.history) if resume else []
    start_epoch = len(history)
    if resume is not None:
        # Shuffling differs from an uninterrupted run either way; keep it reproducible per epoch.
        keras.utils.set_random_seed(spec.fit.seed + start_epoch)
    reporter = _Reporter(hooks, history, attempt)
    validation = (data.x_valid, data.y_valid) if len(data.x_valid) else None
    if start_epoch < spec.fit.epochs:
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=spec.fit.batch_size,
            epochs=spec.fit.epochs,
            initial_epoch=start_epoch,
            validation_data=validation,
            callbacks=[reporter, *_early_stopping(spec)],
            verbose=0,
        )
    result = TrainingResult(model=model, history=history, stopped=reporter.stopped)
    if evaluate and not reporter.stopped:
        test_loss, test_accuracy = model.evaluate(
            data.x_test, data.y_test, batch_size=max(spec.fit.batch_size, 256), verbose=0
        )
        result.test_loss = float(test_loss)
        result.test_accuracy = float(test_accuracy)
    result.versions = versions()
    return result


def check_finite(history: list[EpochRecord]) -> str | None:
    """A user-actionable message when training diverged, else None."""
    for record in history:
        if not np.isfinite(record.loss):
            return (
                f"training diverged at epoch {record.epoch} (loss became NaN or infinite); "
                "lower the learning_rate or add BatchNormalization"
            )
    return None
