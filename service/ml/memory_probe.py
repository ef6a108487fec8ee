"""What one training really takes in memory: peak resident memory above the process's own
baseline, measured in a process of its own (`python -m service.ml.memory_probe SPEC_JSON`).

A process never gives all its memory back, so each measurement needs a fresh one: the bench
(bench/memory.py) and the test of the estimate's ratio start one per net and batch size. The
baseline is taken once TensorFlow is imported, its runtime started and the images loaded, as in
a warm training process; Linux's high-water mark (VmHWM) is then reset to the current resident
size, and after a short fit it holds the peak of the model's build, tracing and training steps.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from service.ml.data import load_mnist, split
from service.ml.train import NoHooks, train
from service.spec.experiment import ExperimentSpec

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
# Batches fitted: the first traces the step; the later ones are the steady state.
STEPS = 3


def _status_bytes(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # the kernel writes kB
    raise LookupError(f"{field} is not in {STATUS}")


def reset_peak() -> int:
    """Reset the high-water mark to the resident size now (Linux >= 4.0); that size."""
    CLEAR_REFS.write_text("5")
    return _status_bytes("VmRSS")


def peak_bytes() -> int:
    return _status_bytes("VmHWM")


class _StopAfter(NoHooks):
    """Stops the fit after `batches` batches: the peak is reached by then, the epoch is long."""

    def __init__(self, batches: int) -> None:
        self.batches_left = batches

    def stop_requested(self) -> bool:
        self.batches_left -= 1
        return self.batches_left <= 0


def measure(spec_json: str) -> dict[str, int]:
    """Peak bytes above the baseline while `spec` is built and fitted for STEPS batches, on
    the spec's training images (all 55,000 unless it says `train_size`), as the worker would."""
    import tensorflow as tf

    spec = ExperimentSpec.model_validate_json(spec_json)
    # The images the worker would fit on, without the validation pass the fit never reaches.
    fit = spec.fit.model_copy(
        update={
            "epochs": 1,
            "train_size": spec.fit.fitted_images,
            "validation_size": 0,
            "validation_split": None,
            "layer_health": False,
        }
    )
    spec = spec.model_copy(update={"fit": fit})
    mnist = load_mnist(os.environ.get("MNIST_PATH"))
    data = split(mnist, validation_size=0, train_size=spec.fit.fitted_images)
    tf.constant(1.0) + 1.0  # start the runtime (thread pools, device) before the baseline
    baseline = reset_peak()
    # One batch per graph call, so that the hook is asked after each batch.
    train(spec, data, hooks=_StopAfter(STEPS), steps_per_execution=1, evaluate=False)
    return {"baseline_bytes": baseline, "peak_bytes": peak_bytes() - baseline}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
