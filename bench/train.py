"""Seconds per epoch: the notebook's own Keras code versus the service's training path.

Runs both on the same spec and seed in one process and prints their figures, the ratio, and
whether the two histories match.

    MNIST_PATH=../shared/data/mnist.npz python bench/train.py --net leaky_relu --epochs 5
    MNIST_PATH=../shared/data/mnist.npz python bench/train.py --layer-health compare
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from service.ml.build import build_model, compile_model
from service.ml.data import load_mnist, split
from service.ml.layer_health import LayerHealth
from service.ml.train import STEPS_PER_EXECUTION, train
from service.spec.experiment import ExperimentSpec
from service.spec.notebook import NETS, notebook_spec


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def notebook(net: str, epochs: int, mnist_path: str | None) -> tuple[list[float], list[float]]:
    """The notebook, as a user would write it (the model built from Keras classes directly)."""
    data = load_mnist(mnist_path)
    x_train_full, y_train_full = data.x_train, data.y_train
    x_valid, x_train = x_train_full[:5000] / 255.0, x_train_full[5000:] / 255.0
    y_valid, y_train = y_train_full[:5000], y_train_full[5000:]
    keras.utils.set_random_seed(42)
    layer = {
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
    }[net]
    model = keras.Sequential(
        [
            keras.layers.Input(shape=[28, 28]),
            keras.layers.Flatten(),
            *layer(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=keras.optimizers.SGD(learning_rate=1e-3),
        metrics=["accuracy"],
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
    return timer.seconds, history.history["val_loss"]


def service(
    net: str, epochs: int, mnist_path: str | None, *, layer_health: bool = True
) -> tuple[list[float], list[float], float]:
    body = notebook_spec(net)
    body["fit"]["epochs"] = epochs
    body["fit"]["layer_health"] = layer_health
    spec = ExperimentSpec.model_validate(body)
    data = split(load_mnist(mnist_path), validation_size=spec.fit.validation_size)
    result = train(spec, data)
    assert result.test_accuracy is not None
    return (
        [record.seconds for record in result.history],
        [record.val_loss or 0.0 for record in result.history],
        result.test_accuracy,
    )


def _steady(seconds: list[float]) -> float:
    """Mean seconds per epoch after the first (which also traces and compiles the graph)."""
    return float(np.mean(seconds[1:] if len(seconds) > 1 else seconds))


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
    off, off_val, _ = service(net, epochs, mnist_path, layer_health=False)
    on, on_val, _ = service(net, epochs, mnist_path, layer_health=True)
    probe = probe_seconds(net, mnist_path)
    print(f"net={net} epochs={epochs}")
    print(f"layer health off : {_steady(off):.3f} s/epoch  all={off}")
    print(f"layer health on  : {_steady(on):.3f} s/epoch  all={on}")
    print(f"measurement      : {probe * 1000:.1f} ms per epoch")
    print(f"cost             : {probe / _steady(off):.2%} of an epoch (goal: at most 5%)")
    print(f"val_loss histories: {'identical' if off_val == on_val else 'DIFFERENT'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=sorted(NETS), default="leaky_relu")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--mnist", default=os.environ.get("MNIST_PATH"))
    parser.add_argument(
        "--layer-health",
        choices=("on", "off", "compare"),
        default="on",
        help="measure layer health each epoch (the default), not, or train both and compare",
    )
    args = parser.parse_args()
    if args.layer_health == "compare":
        compare_layer_health(args.net, args.epochs, args.mnist)
        return

    base_seconds, base_val = notebook(args.net, args.epochs, args.mnist)
    ours_seconds, ours_val, test_accuracy = service(
        args.net, args.epochs, args.mnist, layer_health=args.layer_health == "on"
    )

    print(f"net={args.net} epochs={args.epochs} steps_per_execution={STEPS_PER_EXECUTION}")
    print(f"notebook model.fit : {_steady(base_seconds):.2f} s/epoch  all={base_seconds}")
    print(f"service training   : {_steady(ours_seconds):.2f} s/epoch  all={ours_seconds}")
    print(f"speed-up           : {_steady(base_seconds) / _steady(ours_seconds):.2f}x")
    same = np.array_equal(np.array(base_val), np.array(ours_val))
    close = np.allclose(base_val, ours_val, rtol=1e-5)
    print(f"val_loss histories : {'identical' if same else 'close' if close else 'DIFFERENT'}")
    print(f"  notebook {[f'{v:.6f}' for v in base_val]}")
    print(f"  service  {[f'{v:.6f}' for v in ours_val]}")
    print(f"service test accuracy: {test_accuracy:.4f}")


if __name__ == "__main__":
    main()
