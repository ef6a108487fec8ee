"""Memory of a training: measured peak against the estimate MAX_ACTIVATION_BYTES caps.

Each net and batch size trains for a few batches in a fresh process of its own
(`service.ml.memory_probe`), which reports its peak resident memory above its baseline (after
TensorFlow's import and the images' load). Prints one row per measurement and the ratio
measured / estimated; the estimate should be at least the measurement and within about 1.5x.

    MNIST_PATH=../shared/data/mnist.npz python bench/memory.py
    MNIST_PATH=../shared/data/mnist.npz python bench/memory.py --nets dense-notebook conv-small
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from service.spec.cost import training_cost
from service.spec.experiment import ExperimentSpec

FLATTEN = {"type": "Flatten"}
SOFTMAX = {"type": "Dense", "units": 10, "activation": "softmax"}
TO_IMAGE = {"type": "Reshape", "target_shape": [28, 28, 1]}


def _conv(filters: int, kernel: int = 3, **more: Any) -> dict[str, Any]:
    return {"type": "Conv2D", "filters": filters, "kernel_size": kernel, **more}


# name: (layers, optimizer, batch sizes); the wide ones are the shapes the cap exists for.
NETS: dict[str, tuple[list[dict[str, Any]], str, list[int]]] = {
    "dense-notebook": (
        [
            FLATTEN,
            {"type": "Dense", "units": 300, "kernel_initializer": "he_normal"},
            {"type": "LeakyReLU"},
            {"type": "Dense", "units": 100, "kernel_initializer": "he_normal"},
            {"type": "LeakyReLU"},
            SOFTMAX,
        ],
        "SGD",
        [32, 1024, 8192],
    ),
    "dense-big": (
        [
            FLATTEN,
            {"type": "Dense", "units": 2048, "activation": "relu"},
            {"type": "BatchNormalization"},
            {"type": "Dense", "units": 1024, "activation": "relu"},
            {"type": "Dropout", "rate": 0.2},
            SOFTMAX,
        ],
        "Adam",
        [256, 4096],
    ),
    "dense-per-pixel": (  # the shape: a Dense applied to each of 784 pixels
        [
            {"type": "Reshape", "target_shape": [784, 1]},
            {"type": "Dense", "units": 4096},
            {"type": "Dense", "units": 1},
            FLATTEN,
            SOFTMAX,
        ],
        "Adam",
        [8, 32],
    ),
    "conv-small": (
        [
            TO_IMAGE,
            _conv(32, activation="relu"),
            {"type": "MaxPooling2D", "pool_size": 2},
            _conv(64, activation="relu"),
            {"type": "MaxPooling2D", "pool_size": 2},
            FLATTEN,
            SOFTMAX,
        ],
        "Adam",
        [64, 1024],
    ),
    "conv-deep": (
        [
            TO_IMAGE,
            _conv(128, padding="same", activation="relu"),
            {"type": "BatchNormalization"},
            _conv(128, padding="same", activation="relu"),
            {"type": "MaxPooling2D", "pool_size": 2},
            _conv(256, padding="same", activation="relu"),
            FLATTEN,
            SOFTMAX,
        ],
        "Adam",
        [16, 64],
    ),
    "conv-wide": (  # the shape: 2,048 filters on the image, few parameters
        [TO_IMAGE, _conv(2048, padding="same"), _conv(1, 1), FLATTEN, SOFTMAX],
        "Adam",
        [8, 32],
    ),
}


# Most rows train on this many images, so that the copy of the training set that fit makes (a
# fixed cost, the same for every net) stays small beside the nets' own memory; the last rows
# train on all 55,000 images, as a worker does by default.
IMAGES = 16_384
ALL_IMAGES_ROWS = [("dense-notebook", 32), ("dense-notebook", 8192), ("conv-small", 1024)]


def spec(name: str, batch_size: int, train_size: int | None = IMAGES) -> ExperimentSpec:
    layers, optimizer, _ = NETS[name]
    return ExperimentSpec.model_validate(
        {
            "layers": layers,
            "compile": {
                "optimizer": {"type": optimizer},
                "loss": "sparse_categorical_crossentropy",
                "metrics": ["accuracy"],
            },
            "fit": {
                "epochs": 1,
                "batch_size": batch_size,
                "train_size": train_size,
                "validation_size": 5000,
                "seed": 42,
            },
        }
    )


def measured_peak(experiment: ExperimentSpec) -> int:
    """Peak bytes above the baseline of a fresh process that fits `experiment` briefly."""
    answer = subprocess.run(
        [sys.executable, "-m", "service.ml.memory_probe", experiment.model_dump_json()],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(answer.stdout.splitlines()[-1])["peak_bytes"])


def row(name: str, batch_size: int, train_size: int | None) -> str:
    experiment = spec(name, batch_size, train_size)
    cost = training_cost(experiment)
    peak = measured_peak(experiment)
    return (
        f"| {name} | {batch_size} | {cost.fitted_images:,} | {peak / 1e6:,.0f} "
        f"| {cost.memory_bytes / 1e6:,.0f} | {cost.activation_bytes_per_batch / 1e6:,.0f} "
        f"| {peak / cost.memory_bytes:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", choices=list(NETS), default=list(NETS))
    parser.add_argument("--no-all-images", action="store_true", help="skip the 55,000-image rows")
    args = parser.parse_args()
    print(
        "| net | batch | images | measured peak (MB) | estimate (MB) | of which a batch (MB) "
        "| measured / estimate |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.nets:
        for batch_size in NETS[name][2]:
            print(row(name, batch_size, IMAGES), flush=True)
    if not args.no_all_images:
        for name, batch_size in ALL_IMAGES_ROWS:
            if name in args.nets:
                print(row(name, batch_size, None), flush=True)


if __name__ == "__main__":
    main()
