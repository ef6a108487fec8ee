"""Fit a spec on MNIST the notebook's way, reporting and checkpointing after every epoch.

Speed comes from `steps_per_execution` (many batches per graph call: the same maths, far less
Python between steps); results are the notebook's, batch for batch. With `xla` each call of 64
steps is one XLA computation over data held as tensors (compiled_epochs.py): faster again, but
with XLA's kernels instead of oneDNN's (TensorFlow's default on x86), so a history matches the
notebook's to about 1e-5 rather than bit for bit (and one written with `jit_compile=True`
exactly). See docs/explanation/benchmarks.md.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import keras
import numpy as np

from service.domain import EpochRecord
from service.insight.evaluation import Evaluation
from service.insight.layers import LayerStats
from service.ml.build import build_model, compile_model
from service.ml.compiled_epochs import fit_compiled
from service.ml.data import Split
from service.ml.evaluation import evaluate_model
from service.ml.layer_health import LayerHealth
from service.ml.pipelines import fit_pipeline
from service.ml.traced import TracedModels
from service.spec.experiment import ExperimentSpec

log = logging.getLogger(__name__)

STEPS_PER_EXECUTION = 64
"""Batches per graph call, on either path. A cancel or a drain is seen between calls, so this
bounds how many batches a stop waits for (64 of the notebook's nets' batches: about 0.1 s);
more per call (256, a whole epoch) measured no faster, with or without XLA."""
RANDOM_LAYERS = frozenset({"Dropout", "AlphaDropout"})
"""Layers whose masks XLA would draw: its random numbers on CPU are ~100x slower than
TensorFlow's kernel (bench/train.py), so nets with them keep TensorFlow's kernels."""


def uses_xla(spec: ExperimentSpec, *, xla: bool) -> bool:
    """Whether a training asked to use XLA (`xla`) does: not for nets with random layers."""
    return xla and not any(layer.type in RANDOM_LAYERS for layer in spec.layers)


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

    def layers_measured(self, epoch: int, layers: list[LayerStats]) -> None:
        """Layer health of an epoch, measured just before `epoch_finished` for that epoch."""
        ...


class NoHooks:
    def stop_requested(self) -> bool:
        return False

    def epoch_finished(
        self, model: keras.Model, record: EpochRecord, history: list[EpochRecord]
    ) -> bool:
        return True

    def layers_measured(self, epoch: int, layers: list[LayerStats]) -> None:
        return None


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
    evaluation: Evaluation | None = None
    versions: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    """How long each part took: build (and compile), fit, evaluate."""


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _learning_rate(model: keras.Model) -> float | None:
    """The rate at the epoch's end, as Keras logs it: a schedule's value after the epoch's
    steps, and before a ReduceLROnPlateau later in the callback list lowers it."""
    return _finite_or_none(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


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
            learning_rate=_learning_rate(self.model),
        )
        self.history.append(record)
        if not self.hooks.epoch_finished(self.model, record, list(self.history)):
            self.stopped = True
            self.model.stop_training = True


def _mode(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"


def _callbacks(spec: ExperimentSpec) -> list[keras.callbacks.Callback]:
    """The spec's Keras callbacks, after the reporter (which reads the epoch's rate first).

    Their specs' fields are the callbacks' own argument names; only `mode` is chosen here.
    """
    callbacks: list[keras.callbacks.Callback] = []
    if (early := spec.fit.early_stopping) is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(**early.model_dump(), mode=_mode(early.monitor))
        )
    if (plateau := spec.fit.reduce_lr_on_plateau) is not None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(**plateau.model_dump(), mode=_mode(plateau.monitor))
        )
    return callbacks


def _layer_health(
    spec: ExperimentSpec, data: Split, hooks: TrainingHooks
) -> list[keras.callbacks.Callback]:
    # Measured on validation images, never on test images; no validation set, no measurement.
    if not spec.fit.layer_health or not len(data.x_valid):
        return []
    return [LayerHealth(data.x_valid, data.y_valid, hooks.layers_measured)]


KERNELS_XLA = "XLA"
KERNELS_EXACT = "TensorFlow"


def versions(*, jit_compile: bool = False) -> dict[str, str]:
    """The software whose arithmetic a history depends on: a rerun compares these. The
    kernels are among them: XLA's differ from TensorFlow's in the last digits."""
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "kernels": KERNELS_XLA if jit_compile else KERNELS_EXACT,
    }


def prepare_model(
    spec: ExperimentSpec,
    *,
    resume: Resume | None,
    steps_per_execution: int,
    jit_compile: bool = False,
    traced: TracedModels | None = None,
) -> keras.Model:
    """A fresh seeded model, or the checkpointed one; compiled for training either way. A warm
    process passes its `traced` models: one of the same architecture takes the fresh one's
    state and trains in its place, with the functions Keras traced for it (traced.py)."""
    if resume is not None:
        model = resume.model
        # Recompiling would drop the restored optimizer state; only the execution knobs change.
        model.steps_per_execution = steps_per_execution
        model.jit_compile = jit_compile
        return model
    keras.utils.set_random_seed(spec.fit.seed)
    model = build_model(spec)
    compile_model(model, spec, steps_per_execution=steps_per_execution, jit_compile=jit_compile)
    return traced.take(spec, model) if traced is not None else model


def train(
    spec: ExperimentSpec,
    data: Split,
    *,
    hooks: TrainingHooks | None = None,
    resume: Resume | None = None,
    attempt: int = 1,
    steps_per_execution: int = STEPS_PER_EXECUTION,
    xla: bool = False,
    evaluate: bool = True,
    traced: TracedModels | None = None,
) -> TrainingResult:
    """Fit `spec` on `data`; `xla` asks for XLA-compiled steps where the net allows them
    (`uses_xla`)."""
    hooks = hooks or NoHooks()
    jit_compile = uses_xla(spec, xla=xla)
    log.info(
        "fitting with %s, %d batches per graph call",
        "XLA's compiled loop" if jit_compile else "TensorFlow's kernels",
        steps_per_execution,
    )
    started = time.perf_counter()
    model = prepare_model(
        spec,
        resume=resume,
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
        traced=traced,
    )
    built = time.perf_counter()
    history = list(resume.history) if resume else []
    start_epoch = len(history)
    if resume is not None:
        # `fit` shuffles differently from an uninterrupted run either way; keep it reproducible
        # per epoch. (The compiled loop draws the uninterrupted run's order from the spec's seed.)
        keras.utils.set_random_seed(spec.fit.seed + start_epoch)
    if spec.fit.validation_split is not None and not len(data.x_valid):
        # A caller that split the notebook's way (validation_size 0) leaves this to fit, as Keras.
        data = data.holding_out_last(spec.fit.validation_split)
    reporter = _Reporter(hooks, history, attempt)
    validation = (data.x_valid, data.y_valid) if len(data.x_valid) else None
    callbacks = [*_layer_health(spec, data, hooks), reporter, *_callbacks(spec)]
    if start_epoch < spec.fit.epochs and jit_compile:
        fit_compiled(
            model,
            data.x_train,
            data.y_train,
            batch_size=spec.fit.batch_size,
            epochs=spec.fit.epochs,
            initial_epoch=start_epoch,
            seed=spec.fit.seed,
            validation_data=validation,
            callbacks=callbacks,
            steps_per_call=steps_per_execution,
        )
    elif start_epoch < spec.fit.epochs:
        # `fit(x, y, batch_size=...)` over the pipelines it would build, kept (pipelines.py).
        batch_size = spec.fit.batch_size
        model.fit(
            fit_pipeline(data.x_train, data.y_train, batch_size=batch_size, shuffle=True),
            epochs=spec.fit.epochs,
            initial_epoch=start_epoch,
            validation_data=None
            if validation is None
            else fit_pipeline(*validation, batch_size=batch_size, shuffle=False),
            shuffle=False,  # the pipeline shuffles, as fit's own does
            callbacks=callbacks,
            verbose=0,
        )
    fitted = time.perf_counter()
    result = TrainingResult(model=model, history=history, stopped=reporter.stopped)
    if evaluate and not reporter.stopped:
        # One forward pass gives the scores and the confusion matrix, so they always agree.
        result.evaluation = evaluate_model(model, data.x_test, data.y_test)
        result.test_loss = result.evaluation.test_loss
        result.test_accuracy = result.evaluation.test_accuracy
    result.versions = versions(jit_compile=jit_compile)
    if traced is not None:
        traced.keep(spec, model)
    result.seconds = {
        "build": built - started,
        "fit": fitted - built,
        "evaluate": time.perf_counter() - fitted,
    }
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
