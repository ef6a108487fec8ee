"""The memory estimate that MAX_ACTIVATION_BYTES caps, against what a training really takes:
each net is fitted for a few batches in a fresh process (service.ml.memory_probe), which reports
its peak resident memory above its own baseline. The estimate must be at least the measurement
and at most twice it. Memory, unlike time, is the same on a busy machine, but not on another
CPU: TensorFlow's kernels pick their scratch buffers by processor, and the per-pixel Dense below
peaked at 157-159 MB on one machine (AMD EPYC) and 225-252 MB on another, with the same Keras
(bench/memory.py measures the larger nets behind the calibration)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from service.spec.cost import training_cost
from service.spec.experiment import ExperimentSpec
from tests.helpers import MNIST_PATH

TO_IMAGE = {"type": "Reshape", "target_shape": [28, 28, 1]}
SOFTMAX = {"type": "Dense", "units": 10, "activation": "softmax"}
FLATTEN = {"type": "Flatten"}
# Few parameters and large activations, the shapes the cap exists for, at sizes a test affords.
PER_PIXEL_DENSE = [
    {"type": "Reshape", "target_shape": [784, 1]},
    {"type": "Dense", "units": 1024, "activation": "relu"},
    {"type": "Dense", "units": 1},
    FLATTEN,
    SOFTMAX,
]
WIDE_CONV = [
    TO_IMAGE,
    {"type": "Conv2D", "filters": 256, "kernel_size": 3, "padding": "same"},
    {"type": "BatchNormalization"},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "Conv2D", "filters": 1, "kernel_size": 1},
    FLATTEN,
    SOFTMAX,
]


def _spec(layers: list[dict[str, Any]], batch_size: int) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "layers": layers,
            "compile": {"optimizer": {"type": "Adam"}},
            "fit": {"epochs": 1, "batch_size": batch_size, "train_size": 4096, "seed": 42},
        }
    )


def _measured_peak(spec: ExperimentSpec) -> int:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if MNIST_PATH:
        env["MNIST_PATH"] = MNIST_PATH
    answer = subprocess.run(
        [sys.executable, "-m", "service.ml.memory_probe", spec.model_dump_json()],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=600,
    )
    return int(json.loads(answer.stdout.splitlines()[-1])["peak_bytes"])


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(_spec(PER_PIXEL_DENSE, 16), id="dense-per-pixel-16"),
        pytest.param(_spec(WIDE_CONV, 32), id="conv-256-filters-32"),
    ],
)
def test_the_estimate_is_at_least_the_measured_peak_and_close_to_it(spec: ExperimentSpec) -> None:
    estimate = training_cost(spec).memory_bytes
    measured = _measured_peak(spec)
    assert estimate / 2 <= measured <= estimate, f"measured {measured:,} B of {estimate:,} B"
