"""Where an epoch's time goes: the parts of a training step timed alone, then `fit`'s loop.

Each part runs over one epoch of batches (the training set's whole batches of the spec's
size) inside one `tf.function` with a `tf.range` loop, first with TensorFlow's kernels and then
XLA-compiled (`jit_compile=True`: the whole epoch one XLA computation). Each part adds one
thing to the one before: the forward pass and loss; the gradients; the optimizer's update;
the loss tracker and the metrics (Keras's own `train_step`, what `fit` runs per batch). Then
`fit` itself, with no validation, at 1, 64 and an epoch's batches per graph call (what the
loop, the input pipeline and the Python between calls add), and validation alone. A large
sgemm gives the machine's matmul rate, against which the epoch's FLOPs give a floor.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from service.ml.build import build_model, compile_model
from service.ml.data import load_mnist, split
from service.spec.experiment import ExperimentSpec

REPEATS = 3


def _seconds(run: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median seconds of `run` after a first call (which traces and compiles)."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def _model(spec: ExperimentSpec, **options: object) -> keras.Model:
    keras.utils.set_random_seed(spec.fit.seed)
    model = build_model(spec)
    compile_model(model, spec, **options)  # type: ignore[arg-type]
    return model


def _epoch_loop(model: keras.Model, part: str, x: tf.Tensor, y: tf.Tensor, jit: bool) -> float:
    """Seconds of one epoch of `part`, every batch in one graph call."""
    variables = model.trainable_variables
    loss_fn = model.loss

    def step(images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        if part == "train_step":
            logs = model.train_step((images, labels))
            return tf.cast(logs["loss"], tf.float32)
        with tf.GradientTape() as tape:
            loss = keras.losses.get(loss_fn)(labels, model(images, training=True))
            loss = tf.reduce_mean(loss)
        if part == "forward":
            return loss
        gradients = tape.gradient(loss, variables)
        if part == "backward":
            return loss + tf.add_n([tf.reduce_sum(gradient) for gradient in gradients])
        model.optimizer.apply(gradients, variables)
        return loss

    @tf.function(jit_compile=jit)
    def epoch() -> tf.Tensor:
        total = tf.constant(0.0)
        for index in tf.range(tf.shape(x)[0]):
            total += step(x[index], y[index])
        return total

    return _seconds(epoch)


def _fit_seconds(model: keras.Model, data: tuple[np.ndarray, ...], batch: int) -> float:
    timer: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            timer.append(time.perf_counter() - self.started)

    x_train, y_train = data
    model.fit(x_train, y_train, batch_size=batch, epochs=3, callbacks=[Timer()], verbose=0)
    return float(np.median(timer[1:]))


def _sgemm_gflops() -> float:
    a = tf.random.normal([784, 2048])
    b = tf.random.normal([2048, 2048])
    seconds = _seconds(lambda: tf.matmul(a, b).numpy(), repeats=10)
    return 2 * 784 * 2048 * 2048 / seconds / 1e9


def _epoch_gflop(model: keras.Model, examples: int) -> float:
    """Forward and backward FLOPs of an epoch's dense layers: 2 per multiply-add forward, and
    twice that backward (the weights' gradient, and the inputs' for all but the first)."""
    kernels = [w for w in model.trainable_weights if len(w.shape) == 2]
    forward = sum(2 * int(np.prod(kernel.shape)) for kernel in kernels)
    backward = 2 * forward - 2 * int(np.prod(kernels[0].shape))
    return (forward + backward) * examples / 1e9


def profile(spec: ExperimentSpec, mnist_path: str | None) -> None:
    data = split(load_mnist(mnist_path), validation_size=spec.fit.validation_size)
    batch = spec.fit.batch_size
    steps = len(data.x_train) // batch
    x = tf.constant(data.x_train[: steps * batch].reshape(steps, batch, *data.x_train.shape[1:]))
    y = tf.constant(data.y_train[: steps * batch].reshape(steps, batch))
    per_epoch = -(-len(data.x_train) // batch)
    print(
        f"{steps} batches of {batch}, threads intra "
        f"{tf.config.threading.get_intra_op_parallelism_threads()}, "
        f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    parts = ("forward", "backward", "optimizer", "train_step")
    labels = {
        "forward": "forward pass + loss",
        "backward": "+ gradients",
        "optimizer": "+ SGD update",
        "train_step": "+ loss tracker, accuracy (Keras train_step)",
    }
    random = [layer.name for layer in _model(spec).layers if "dropout" in layer.name]
    for jit in (False, True):
        if jit and random:
            # XLA's random numbers on CPU make each dropout mask ~100x slower than TensorFlow's.
            print(f"-- XLA: skipped, {random} would take minutes per epoch")
            continue
        print(f"-- {'XLA' if jit else 'TensorFlow kernels'}: one epoch in one graph call")
        before = 0.0
        for part in parts:
            seconds = _epoch_loop(_model(spec), part, x, y, jit)
            print(f"   {labels[part]:<46} {seconds:6.2f} s  (+{seconds - before:5.2f})")
            before = seconds
        for spe in (1, 64, per_epoch):
            model = _model(spec, steps_per_execution=spe, jit_compile=jit)
            seconds = _fit_seconds(model, (data.x_train, data.y_train), batch)
            print(f"   fit, no validation, {spe:>4} batches per call          {seconds:6.2f} s")
        model = _model(spec, steps_per_execution=64, jit_compile=jit)
        model.evaluate(data.x_valid, data.y_valid, batch_size=batch, verbose=0)
        seconds = _seconds(
            lambda m=model: m.evaluate(data.x_valid, data.y_valid, batch_size=batch, verbose=0)
        )
        label = f"validation ({len(data.x_valid)} images, 64 per call)"
        print(f"   {label:<52} {seconds:6.2f} s")
    rate = _sgemm_gflops()
    flop = _epoch_gflop(_model(spec), steps * batch)
    print(
        f"matmul rate {rate:.0f} GFLOP/s (784x2048x2048 sgemm); an epoch's dense layers "
        f"{flop:.0f} GFLOP: floor {flop / rate:.2f} s"
    )
