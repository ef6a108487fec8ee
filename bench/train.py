"""Seconds per epoch: the notebook's own Keras code versus the service's ways of running it.

Runs the notebook's `fit` and each chosen path on the same net and seed in one process
(one after another, so that the load of the moment falls on all of them), and prints per path the
median seconds of the epochs after the first, the ratio to the notebook, and how far its
history (loss, accuracy, val_loss, val_accuracy of every epoch) is from the notebook's.

    MNIST_PATH=../shared/data/mnist.npz python bench/train.py --net leaky_relu --epochs 3
    MNIST_PATH=../shared/data/mnist.npz python bench/train.py --paths service,fit-xla,service-xla
    MNIST_PATH=../shared/data/mnist.npz python bench/train.py --paths exact,xla,xla-epoch
    MNIST_PATH=../shared/data/mnist.npz python bench/train.py --profile
    MNIST_PATH=../shared/data/mnist.npz python bench/train.py --slots --paths service,service-xla
    MNIST_PATH=../shared/data/mnist.npz python bench/train.py --backends   # after pip install jax
    MNIST_PATH=../shared/data/mnist.npz python bench/train.py --layer-health compare
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import time
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from train_profile import profile

from service.config import Settings
from service.domain import EpochRecord
from service.ml.build import build_model, compile_model
from service.ml.data import load_mnist, split
from service.ml.layer_health import LayerHealth
from service.ml.train import STEPS_PER_EXECUTION, NoHooks, train
from service.spec.experiment import ExperimentSpec
from service.spec.notebook import NETS, notebook_spec
from service.worker.tensorflow_setup import configure_tensorflow

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
EPOCH = 0
"""A path's steps_per_execution of EPOCH: every batch of an epoch in one graph call."""


@dataclass(frozen=True)
class Path:
    """One way for the service to run `fit`: batches per graph call, and XLA or not."""

    steps_per_execution: int
    xla: bool
    about: str


PATHS = {
    "exact": Path(STEPS_PER_EXECUTION, False, "TensorFlow's kernels, 64 batches per call"),
    "exact-epoch": Path(EPOCH, False, "TensorFlow's kernels, a whole epoch per call"),
    "xla": Path(STEPS_PER_EXECUTION, True, "XLA's compiled loop, 64 batches per call"),
    "xla-256": Path(256, True, "XLA's compiled loop, 256 batches per call"),
    "xla-epoch": Path(EPOCH, True, "XLA's compiled loop, a whole epoch per call"),
}


SERVICE_PATHS = {
    "service": "the service's exact path (TRAINING_PATH=exact, the default)",
    "service-xla": "the service's fast path (TRAINING_PATH=xla: its compiled loop)",
}
KERAS_PATHS = {
    "fit-xla": "Keras's fit with jit_compile=True, 64 batches per call (the xla path before "
    "its compiled loop)",
}


@dataclass(frozen=True)
class Run:
    seconds: list[float]
    history: dict[str, list[float]]
    test_accuracy: float | None = None
    kernels: str = "tensorflow"
    cpu_seconds: tuple[float, ...] = ()
    """CPU time of the process per epoch (all threads): steadier than wall time on a shared
    machine, where another engineer's work takes cores from whichever path runs."""


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()
        self._cpu_start = time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        self.cpu_seconds.append(time.process_time() - self._cpu_start)


class CpuClock(NoHooks):
    """Hooks that note the process's CPU time as each of the service's epochs ends."""

    def __init__(self) -> None:
        self.marks = [time.process_time()]

    def epoch_finished(
        self, model: keras.Model, record: EpochRecord, history: list[EpochRecord]
    ) -> bool:
        self.marks.append(time.process_time())
        return True

    @property
    def cpu_seconds(self) -> tuple[float, ...]:
        """Per epoch; the first also holds the build before it."""
        return tuple(after - before for before, after in itertools.pairwise(self.marks))


def notebook_layers(net: str) -> list[keras.layers.Layer]:
    """The notebook's hidden layers, written with Keras classes directly."""
    return {
        "leaky_relu": lambda: [
            keras.layers.Dense(300, kernel_initializer="he_normal"),
            keras.layers.LeakyReLU(),
            keras.layers.Dense(100, kernel_initializer="he_normal"),
            keras.layers.LeakyReLU(),
        ],
        "batchnorm": lambda: [
            keras.layers.BatchNormalization(),
            keras.layers.Dense(300, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.BatchNormalization(),
        ],
        "dropout": lambda: [
            keras.layers.Dropout(rate=0.2),
            keras.layers.Dense(300, activation="elu", kernel_initializer="he_normal"),
            keras.layers.Dropout(rate=0.2),
            keras.layers.Dense(100, activation="elu", kernel_initializer="he_normal"),
            keras.layers.Dropout(rate=0.2),
        ],
    }[net]()


def notebook(
    net: str,
    epochs: int,
    mnist_path: str | None,
    steps_per_execution: int = 1,
    jit_compile: bool = False,
) -> Run:
    """The notebook, as a user would write it (the model built from Keras classes directly);
    on whichever backend Keras runs (KERAS_BACKEND), with `steps_per_execution` and
    `jit_compile` if asked."""
    data = load_mnist(mnist_path)
    x_train_full, y_train_full = data.x_train, data.y_train
    x_valid, x_train = x_train_full[:5000] / 255.0, x_train_full[5000:] / 255.0
    y_valid, y_train = y_train_full[:5000], y_train_full[5000:]
    keras.utils.set_random_seed(42)
    model = keras.Sequential(
        [
            keras.layers.Input(shape=[28, 28]),
            keras.layers.Flatten(),
            *notebook_layers(net),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=keras.optimizers.SGD(learning_rate=1e-3),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    timer = EpochTimer()
    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        validation_data=(x_valid, y_valid),
        callbacks=[timer],
        verbose=0,
    )
    kernels = "xla" if jit_compile else "tensorflow"
    history_of = {key: history.history[key] for key in HISTORY_KEYS}
    return Run(timer.seconds, history_of, None, kernels, tuple(timer.cpu_seconds))


def _spec(net: str, epochs: int, layer_health: bool) -> ExperimentSpec:
    body = notebook_spec(net)
    body["fit"]["epochs"] = epochs
    body["fit"]["layer_health"] = layer_health
    return ExperimentSpec.model_validate(body)


def service(
    net: str,
    epochs: int,
    mnist_path: str | None,
    path: Path | None = None,
    *,
    layer_health: bool = True,
    xla: bool = False,
) -> Run:
    """The service's training (`service.ml.train.train`): on `path`, or with its own batches
    per call for `xla` (the TRAINING_PATH setting: False is exact, True is xla)."""
    spec = _spec(net, epochs, layer_health)
    data = split(load_mnist(mnist_path), validation_size=spec.fit.validation_size)
    options: dict[str, Any] = {"xla": xla}
    if path is not None:
        steps = path.steps_per_execution or -(-len(data.x_train) // spec.fit.batch_size)
        options = {"steps_per_execution": steps, "xla": path.xla}
    clock = CpuClock()
    result = train(spec, data, hooks=clock, **options)
    history = {
        key: [float(getattr(record, key) or 0.0) for record in result.history]
        for key in HISTORY_KEYS
    }
    seconds = [record.seconds for record in result.history]
    kernels = "xla" if result.model.jit_compile else "tensorflow"
    return Run(seconds, history, result.test_accuracy, kernels, clock.cpu_seconds)


def steady(seconds: list[float]) -> float:
    """Median seconds per epoch after the first (which also traces and compiles the graph)."""
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds))


def distance(run: Run, baseline: Run) -> str:
    """How far `run`'s history is from `baseline`'s: bit-identical, or the largest difference."""
    differences = {
        key: np.max(np.abs(np.array(run.history[key]) - np.array(baseline.history[key])))
        for key in HISTORY_KEYS
    }
    if not any(differences.values()):
        return "bit-identical"
    return "max |diff| " + " ".join(f"{key} {value:.1e}" for key, value in differences.items())


def compare_paths(net: str, epochs: int, mnist_path: str | None, names: list[str]) -> None:
    runs = {"notebook fit": notebook(net, epochs, mnist_path)}
    for name in names:
        if name in KERAS_PATHS:
            runs[name] = notebook(net, epochs, mnist_path, STEPS_PER_EXECUTION, jit_compile=True)
        else:
            runs[name] = service(
                net, epochs, mnist_path, PATHS.get(name), xla=name == "service-xla"
            )
    base = steady(runs["notebook fit"].seconds)
    base_cpu = runs["notebook fit"].cpu_seconds
    print(f"net={net} epochs={epochs} load average {os.getloadavg()[0]:.1f}")
    for name, run in runs.items():
        about = (
            PATHS[name].about if name in PATHS else {**SERVICE_PATHS, **KERAS_PATHS}.get(name, "")
        )
        print(
            f"{name:>12}: {steady(run.seconds):.2f} s/epoch  {steady(run.seconds) / base:.2f}x"
            f"  all={[round(second, 2) for second in run.seconds]}  {about} ({run.kernels})"
        )
        if run.cpu_seconds:
            cpu = steady(list(run.cpu_seconds))
            print(f"{'':>14}CPU {cpu:.2f} s/epoch {cpu / steady(list(base_cpu)):.2f}x")
        if name != "notebook fit":
            print(f"{'':>14}{distance(run, runs['notebook fit'])}")
    for name, run in runs.items():
        print(f"  {name:>12} val_loss {[f'{value:.6f}' for value in run.history['val_loss']]}")


def _slot(net: str, epochs: int, mnist_path: str | None, name: str, slots: int) -> list[float]:
    """One busy worker slot: a process with TensorFlow's threads as the worker sizes them."""
    configure_tensorflow(Settings(worker_slots=slots))
    path = PATHS.get(name)
    return service(net, epochs, mnist_path, path, xla=name == "service-xla").seconds


def throughput(net: str, epochs: int, mnist_path: str | None, names: list[str]) -> None:
    """Epochs per minute as a class would feel them: one slot busy, then two at once (each a
    process, as the worker's slots are), counted from each slot's epochs after its first."""
    print(f"net={net} epochs={epochs} per slot, {os.cpu_count()} cores")
    context = multiprocessing.get_context("spawn")
    for name in names:
        for slots in (1, 2):
            load = os.getloadavg()[0]
            with context.Pool(slots) as pool:
                runs = pool.starmap(_slot, [(net, epochs, mnist_path, name, slots)] * slots)
            per_slot = [60 / steady(seconds) for seconds in runs]
            print(
                f"{name:>12}, {slots} slot{'s' if slots > 1 else ' '} busy: "
                f"{sum(per_slot):5.1f} epochs/min  (per slot {[round(e, 1) for e in per_slot]},"
                f" load average {load:.1f})"
            )


def backends(net: str, epochs: int, mnist_path: str | None) -> None:
    """The notebook's fit on Keras 3's TensorFlow and JAX backends (JAX always XLA-compiles),
    at 1 and 64 batches per call, each in a fresh process (Keras picks its backend once)."""
    context = multiprocessing.get_context("spawn")
    runs: dict[str, Run] = {}
    for backend in ("tensorflow", "jax"):
        os.environ["KERAS_BACKEND"] = backend
        with context.Pool(1) as pool:
            for steps in (1, 64):
                runs[f"{backend} {steps}"] = pool.apply(notebook, (net, epochs, mnist_path, steps))
    os.environ.pop("KERAS_BACKEND")
    base = steady(runs["tensorflow 1"].seconds)
    print(f"net={net} epochs={epochs} load average {os.getloadavg()[0]:.1f}")
    for name, run in runs.items():
        print(
            f"{name:>13} per call: {steady(run.seconds):.2f} s/epoch "
            f"{steady(run.seconds) / base:.2f}x  {distance(run, runs['tensorflow 1'])}"
        )


def probe_seconds(net: str, mnist_path: str | None, repeats: int = 5) -> float:
    """Median seconds of one epoch-end measurement (after the first, which traces the graph)."""
    spec = ExperimentSpec.model_validate(notebook_spec(net))
    data = split(load_mnist(mnist_path), validation_size=spec.fit.validation_size)
    model = build_model(spec)
    compile_model(model, spec)
    health = LayerHealth(data.x_valid, data.y_valid, lambda epoch, layers: None)
    health.set_model(model)
    health.on_train_begin()
    health.on_epoch_end(0)
    seconds = []
    for epoch in range(1, repeats + 1):
        started = time.perf_counter()
        health.on_epoch_end(epoch)
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds))


def compare_layer_health(net: str, epochs: int, mnist_path: str | None) -> None:
    """What measuring layer health costs: its epoch-end work timed alone, against an epoch
    (timing two whole trainings on a shared machine drowns a 1% cost in noise); then the
    same training with it off and on, whose histories must not differ."""
    off = service(net, epochs, mnist_path, layer_health=False)
    on = service(net, epochs, mnist_path, layer_health=True)
    probe = probe_seconds(net, mnist_path)
    print(f"net={net} epochs={epochs}")
    print(f"layer health off : {steady(off.seconds):.3f} s/epoch  all={off.seconds}")
    print(f"layer health on  : {steady(on.seconds):.3f} s/epoch  all={on.seconds}")
    print(f"measurement      : {probe * 1000:.1f} ms per epoch")
    print(f"cost             : {probe / steady(off.seconds):.2%} of an epoch (goal: at most 5%)")
    print(f"histories        : {distance(on, off)}")


def _names(parser: argparse.ArgumentParser, paths: str) -> list[str]:
    names = [name.strip() for name in paths.split(",") if name.strip()]
    known = {*SERVICE_PATHS, *KERAS_PATHS, *PATHS}
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown paths {unknown}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=sorted(NETS), default="leaky_relu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--mnist", default=os.environ.get("MNIST_PATH"))
    parser.add_argument(
        "--paths",
        default="service",
        help="comma-separated, each run after the notebook's fit: "
        f"{', '.join([*SERVICE_PATHS, *KERAS_PATHS, *PATHS])}",
    )
    parser.add_argument(
        "--slots",
        action="store_true",
        help="epochs per minute of each path with one slot busy, then two",
    )
    parser.add_argument(
        "--backends",
        action="store_true",
        help="the notebook's fit on TensorFlow and JAX (pip install jax)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="where an epoch's time goes, part by part"
    )
    parser.add_argument(
        "--layer-health",
        choices=("on", "compare"),
        default="on",
        help="'compare' trains with layer health off and on and times its measurement",
    )
    args = parser.parse_args()
    if args.layer_health == "compare":
        compare_layer_health(args.net, args.epochs, args.mnist)
    elif args.slots:
        throughput(args.net, args.epochs, args.mnist, _names(parser, args.paths))
    elif args.backends:
        backends(args.net, args.epochs, args.mnist)
    elif args.profile:
        profile(_spec(args.net, 1, layer_health=False), args.mnist)
    else:
        compare_paths(args.net, args.epochs, args.mnist, _names(parser, args.paths))


if __name__ == "__main__":
    main()
