"""XLA's training loop: each epoch as compiled calls of many steps over data held as tensors.

`fit(jit_compile=True)` compiles each step but still feeds it through tf.data and a graph loop
of step launches. Here the training images, labels and the epoch's order are tensors, and one
XLA computation runs `steps_per_call` of Keras's own `train_step`s, gathering each batch by
index; validation runs its `test_step`s the same way instead of through `evaluate`. About 0.6x
of `fit`'s time for the same epoch (docs/explanation/benchmarks.md).

Batch for batch it is `fit(jit_compile=True)`'s arithmetic in `fit`'s order, so a history is that
path's bit for bit (tests/ml/test_training_path.py). The order is Keras's own: its array
adapter draws it with `tf.random.shuffle` under TensorFlow's global seed, and, the op's seed
being fixed when the pipeline is traced, draws the same permutation every epoch. Drawing it
from the spec's seed alone also makes a resumed training the uninterrupted one's.

The loop around the calls is `fit`'s (callbacks, validation, `stop_training`), so the training
process's hooks, layer health, EarlyStopping and ReduceLROnPlateau see what `fit` shows them,
and a stop asked for during an epoch is seen after the call that is running (64 batches).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras.src.trainers.data_adapters import get_data_adapter

Compiled = Any
"""A `tf.function` (TensorFlow ships no type for it)."""


def keras_order(size: int, *, seed: int) -> np.ndarray:
    """The order in which `fit(shuffle=True)` visits `size` examples, every epoch, when
    TensorFlow's global seed is `seed`: Keras's adapter run over the indices themselves. It
    permutes the whole epoch before it batches, so one batch of them all is the same order
    (and takes 0.1 s rather than 0.7 s of 1,719 small ones)."""
    tf.random.set_seed(seed)
    adapter = get_data_adapter(x=np.arange(size), batch_size=max(size, 1), shuffle=True)
    return np.concatenate([np.asarray(batch) for batch in adapter.get_tf_dataset()])


@dataclass(frozen=True)
class _Call:
    """One compiled call: `count` batches from row `first` of `batches`."""

    batches: tf.Tensor
    first: int
    count: int


def _calls(order: np.ndarray, batch_size: int, steps_per_call: int) -> list[list[_Call]]:
    """An epoch's calls; the last partial batch (its own shape) joins the last call, as in
    `fit`, so that a stop is seen between calls of whole batches only."""
    whole = len(order) // batch_size
    batches = tf.constant(order[: whole * batch_size].reshape(whole, batch_size))
    calls = [
        [_Call(batches, first, min(steps_per_call, whole - first))]
        for first in range(0, whole, steps_per_call)
    ]
    if len(order) % batch_size:
        tail = _Call(tf.constant(order[whole * batch_size :].reshape(1, -1)), 0, 1)
        if calls:
            calls[-1].append(tail)
        else:
            calls.append([tail])
    return calls


def _loop(step: Callable[[tuple[tf.Tensor, tf.Tensor]], Any]) -> Compiled:
    """One compiled call of `step`s: `count` of them on the batches at rows `first`... of
    `batches`, each gathered from the images `x` and labels `y`."""

    # reduce_retracing: the last partial batch and every train size share one trace (XLA
    # still compiles per shape), so a warm process does not warn of retracing.
    @tf.function(jit_compile=True, reduce_retracing=True)
    def steps(
        x: tf.Tensor, y: tf.Tensor, batches: tf.Tensor, first: tf.Tensor, count: tf.Tensor
    ) -> tf.Tensor:
        def one(index: tf.Tensor) -> tuple[tf.Tensor]:
            rows = tf.gather(batches, first + index)
            step((tf.gather(x, rows), tf.gather(y, rows)))
            return (index + 1,)

        # The row is a loop value, not a constant: XLA would compile once per offset.
        return tf.while_loop(lambda index: index < count, one, (tf.constant(0),))[0]

    return steps


@dataclass(frozen=True)
class _Loops:
    optimizer: keras.optimizers.Optimizer
    train: Compiled
    test: Compiled


_compiled: weakref.WeakKeyDictionary[keras.Model, _Loops] = weakref.WeakKeyDictionary()
"""Each model's compiled loops, for the optimizer they were traced with: a warm process that
trains a kept model again (traced.py) reuses them instead of compiling anew."""


def _loops(model: keras.Model) -> _Loops:
    """The model's compiled train and test loops, kept with it for its optimizer."""
    kept = _compiled.get(model)
    if kept is None or kept.optimizer is not model.optimizer:
        kept = _Loops(model.optimizer, _loop(model.train_step), _loop(model.test_step))
        _compiled[model] = kept
    return kept


def _run(loop: Compiled, x: tf.Tensor, y: tf.Tensor, group: list[_Call]) -> int:
    """Run a group of calls (no stop between them); how many batches they ran."""
    for call in group:
        # Tensors, not Python numbers, which tf.function would trace again per value.
        loop(x, y, call.batches, tf.constant(call.first), tf.constant(call.count))
    return sum(call.count for call in group)


def _validate(
    model: keras.Model, loops: _Loops, x: tf.Tensor, y: tf.Tensor, calls: list[list[_Call]]
) -> dict[str, Any]:
    """`model.evaluate(x, y)`'s scores, batch for batch, without its tf.data pipeline."""
    model.reset_metrics()
    for group in calls:
        _run(loops.test, x, y, group)
    return {f"val_{name}": value for name, value in model.get_metrics_result().items()}


def fit_compiled(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    epochs: int,
    initial_epoch: int,
    seed: int,
    validation_data: tuple[np.ndarray, np.ndarray] | None,
    callbacks: list[keras.callbacks.Callback],
    steps_per_call: int,
) -> None:
    """`model.fit(x, y, ...)` with the compiled loop; `seed` is the one the spec gave."""
    calls = _calls(keras_order(len(x), seed=seed), batch_size, steps_per_call)
    images, labels = tf.constant(x), tf.constant(y)
    validation = None
    if validation_data is not None:
        valid_x, valid_y = validation_data
        in_order = _calls(np.arange(len(valid_x)), batch_size, steps_per_call)
        validation = (tf.constant(valid_x), tf.constant(valid_y), in_order)
    # What `fit` builds as it traces its step: here before, as XLA creates no variables.
    model._symbolic_build(data_batch=(images[:batch_size], labels[:batch_size]))
    loops = _loops(model)
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=False,
        add_progbar=False,
        model=model,
        epochs=epochs,
        steps=sum(call.count for group in calls for call in group),
        verbose=0,
    )
    model.stop_training = False
    callback_list.on_train_begin()
    logs: dict[str, Any] = {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        done = 0
        for group in calls:
            callback_list.on_train_batch_begin(done)
            done += _run(loops.train, images, labels, group)
            callback_list.on_train_batch_end(done - 1, {})
            if model.stop_training:
                break
        logs = dict(model.get_metrics_result())
        if validation is not None:
            logs.update(_validate(model, loops, *validation))
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs)
