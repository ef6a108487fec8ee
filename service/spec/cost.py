"""What training a net will cost, estimated from shape inference alone (no TensorFlow): the
memory its activations take per image and per batch, and a rough time per epoch.

The activation estimate is what the forward pass keeps for the backward pass plus the
gradients flowing back through it: every layer's output (and the input), twice, in float32.
It ignores the workspace a convolution's kernel may allocate, so it is a floor; that is the
figure MAX_ACTIVATION_BYTES caps, times the batch size. The time is the multiply-adds of the
forward pass, tripled for the backward pass, over an assumed throughput: good to a factor of
about three on a CPU, more on a GPU (where it is pessimistic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from service.mnist import IMAGE_SHAPE
from service.spec.architecture import InferredLayer, infer_architecture
from service.spec.experiment import ExperimentSpec
from service.spec.layers import BatchNormalization, Conv2D, Dense, Input, MaxPooling2D
from service.spec.layers import Layer as LayerSpec

FLOAT_BYTES = 4
# The forward pass's values are kept for the backward pass, which brings as many gradients.
KEPT_PER_VALUE = 2
# Weights, their gradients and up to two optimizer slots each (Adam's moments).
COPIES_PER_PARAMETER = 4
# The backward pass costs about twice the forward pass.
TRAINING_PASSES = 3
# What TensorFlow sustains on a couple of CPU cores for float32 training of small nets, FLOP/s.
ASSUMED_FLOPS_PER_SECOND = 2.0e10
ROUGHNESS = (
    "a rough estimate: memory from the layer shapes (a floor; convolutions may need more), "
    "time from the multiply-adds at an assumed 20 GFLOP/s (2 CPU cores); expect a factor of "
    "about 3 either way, and far less time on a GPU"
)


@dataclass(frozen=True)
class TrainingCost:
    activation_bytes_per_image: int
    batch_size: int
    parameter_bytes: int
    flops_per_image: int
    """Forward pass only."""
    fitted_images: int

    @property
    def activation_bytes_per_batch(self) -> int:
        return self.activation_bytes_per_image * self.batch_size

    @property
    def memory_bytes(self) -> int:
        return self.activation_bytes_per_batch + self.parameter_bytes

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


def training_cost(spec: ExperimentSpec) -> TrainingCost:
    built = [layer for layer in spec.layers if not isinstance(layer, Input)]
    shape: tuple[int, ...] = IMAGE_SHAPE
    values = math.prod(IMAGE_SHAPE)
    flops = 0
    params = 0
    for layer, inferred in zip(built, infer_architecture(spec.layers), strict=True):
        values += math.prod(inferred.output_shape)
        flops += _flops(layer, shape, inferred)
        params += inferred.params
        shape = inferred.output_shape
    return TrainingCost(
        activation_bytes_per_image=FLOAT_BYTES * KEPT_PER_VALUE * values,
        batch_size=spec.fit.batch_size,
        parameter_bytes=FLOAT_BYTES * COPIES_PER_PARAMETER * params,
        flops_per_image=flops,
        fitted_images=spec.fit.fitted_images,
    )
