"""What training a net will cost, estimated from shape inference alone (no TensorFlow): the
memory its training takes at its peak, and a rough time per epoch.

The memory is a model of what a training process holds above its baseline (TensorFlow imported,
MNIST loaded), calibrated against measured peaks (bench/memory.py: one fresh process per net and
batch size; the model and the table are in docs/explanation/reliability.md):

    peak = workspace + training set + max(training set, weights + batch x per image)

`fit` copies the training images as floats and briefly holds a second copy while it converts
them; a step then holds, beside the first copy, a fixed workspace, copies of every weight
(gradients, optimizer slots, build-time copies) and per image what the forward pass keeps for
the backward pass with the gradients flowing back. MAX_ACTIVATION_BYTES caps the whole peak.
The time is the multiply-adds of the forward pass, tripled for the backward pass, over an
assumed throughput: good to a factor of about three on a CPU, more on a GPU (where it is
pessimistic)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from service.mnist import IMAGE_SHAPE
from service.spec.architecture import InferredLayer, infer_architecture
from service.spec.experiment import ExperimentSpec
from service.spec.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    Input,
    MaxPooling2D,
    Reshape,
)
from service.spec.layers import Layer as LayerSpec

FLOAT_BYTES = 4
# Calibrated by bench/memory.py: at least every measured peak, at most about twice it. It was
# 48 MB until a second machine (Keras 3.15, Linux 6.18) measured the test's two nets at
# 1.03-1.32 times that estimate, varying by 12% from run to run: 128 MB keeps them under it.
# The same nets peak 0.6-0.7 times as high on another CPU (AMD EPYC): the kernels' scratch
# buffers depend on the processor, and a cap must hold on the hungriest.
WORKSPACE_BYTES = 128_000_000
# The weights, their gradients, up to two optimizer slots (Adam's moments), and the copies
# made while the model and the optimizer are built and the step is traced.
COPIES_PER_PARAMETER = 10
# Bytes an image costs at a step's peak per value of each layer's output (2.5, 3.5 and 2 floats).
BYTES_PER_COMPUTED_VALUE = 10  # a Dense's or a Conv2D's output
BYTES_PER_OTHER_VALUE = 14  # activation, normalisation, dropout, pooling outputs
BYTES_PER_INPUT_VALUE = 8  # the batch's images, sliced and cast
VIEWS = (Flatten, Reshape)  # share their input's memory
# The backward pass costs about twice the forward pass.
TRAINING_PASSES = 3
# What TensorFlow sustains on a couple of CPU cores for float32 training of small nets, FLOP/s.
ASSUMED_FLOPS_PER_SECOND = 2.0e10
ROUGHNESS = (
    "a rough estimate: memory from the layer shapes and the training set (measured peaks are "
    "0.5 to 1 times it, by CPU), "
    "time from the multiply-adds at an assumed 20 GFLOP/s (2 CPU cores); expect a factor of "
    "about 3 either way, and far less time on a GPU"
)


@dataclass(frozen=True)
class TrainingCost:
    activation_bytes_per_image: int
    batch_size: int
    parameter_bytes: int
    """The weights, once."""
    flops_per_image: int
    """Forward pass only."""
    fitted_images: int

    @property
    def activation_bytes_per_batch(self) -> int:
        return self.activation_bytes_per_image * self.batch_size

    @property
    def training_set_bytes(self) -> int:
        """One float copy of the images `fit` is given."""
        return FLOAT_BYTES * math.prod(IMAGE_SHAPE) * self.fitted_images

    @property
    def memory_bytes(self) -> int:
        """The training's peak above the process's baseline: what MAX_ACTIVATION_BYTES caps."""
        step = COPIES_PER_PARAMETER * self.parameter_bytes + self.activation_bytes_per_batch
        # The second copy of the training set is gone before the first step: whichever is larger.
        return WORKSPACE_BYTES + self.training_set_bytes + max(self.training_set_bytes, step)

    @property
    def seconds_per_epoch(self) -> float:
        flops = TRAINING_PASSES * self.flops_per_image * self.fitted_images
        return flops / ASSUMED_FLOPS_PER_SECOND

    def as_summary(self) -> dict[str, Any]:
        """The `estimate` a summary shows beside the layers."""
        return {
            "activation_bytes_per_image": self.activation_bytes_per_image,
            "activation_bytes_per_batch": self.activation_bytes_per_batch,
            "memory_bytes": self.memory_bytes,
            "flops_per_image": self.flops_per_image,
            "seconds_per_epoch": round(self.seconds_per_epoch, 1),
            "note": ROUGHNESS,
        }


def _flops(layer: LayerSpec, shape_in: tuple[int, ...], inferred: InferredLayer) -> int:
    """Floating-point operations of one image's forward pass through `layer`."""
    values_out = math.prod(inferred.output_shape)
    match layer:
        case Dense():
            # Keras applies a Dense to the last axis: one matrix product per other position.
            return 2 * shape_in[-1] * values_out
        case Conv2D():
            kh, kw = layer.kernel
            return 2 * kh * kw * shape_in[-1] * values_out
        case MaxPooling2D():
            ph, pw = layer.pool
            return ph * pw * values_out
        case BatchNormalization():
            return 4 * values_out
    return values_out  # activations, dropout, reshapes: about one operation per value


def _bytes_per_image(layer: LayerSpec, inferred: InferredLayer) -> int:
    """What one image costs at a step's peak for `layer`'s output."""
    if isinstance(layer, VIEWS):
        return 0
    per_value = (
        BYTES_PER_COMPUTED_VALUE if isinstance(layer, Dense | Conv2D) else BYTES_PER_OTHER_VALUE
    )
    return per_value * math.prod(inferred.output_shape)


def training_cost(spec: ExperimentSpec) -> TrainingCost:
    built = [layer for layer in spec.layers if not isinstance(layer, Input)]
    shape: tuple[int, ...] = IMAGE_SHAPE
    activation_bytes = BYTES_PER_INPUT_VALUE * math.prod(IMAGE_SHAPE)
    flops = 0
    params = 0
    for layer, inferred in zip(built, infer_architecture(spec.layers), strict=True):
        activation_bytes += _bytes_per_image(layer, inferred)
        flops += _flops(layer, shape, inferred)
        params += inferred.params
        shape = inferred.output_shape
    return TrainingCost(
        activation_bytes_per_image=activation_bytes,
        batch_size=spec.fit.batch_size,
        parameter_bytes=FLOAT_BYTES * params,
        flops_per_image=flops,
        fitted_images=spec.fit.fitted_images,
    )
