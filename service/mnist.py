"""MNIST's geometry and pixel ranges, which the spec, training, images and serving all agree on."""

from __future__ import annotations

from typing import Literal

SIDE = 28
IMAGE_SHAPE: tuple[int, int] = (SIDE, SIDE)
PIXELS = SIDE * SIDE
CLASSES = 10

# The ranges a client's pixel values may be in: MNIST's own bytes, or already divided by 255 as
# the nets see them. "auto" picks one per image and the answer reports which (AssumedScale).
Scale = Literal["auto", "0-255", "0-1"]
AssumedScale = Literal["0-255", "0-1"]

# The Open Inference Protocol's names for a digit model (service.serving.oip reads and writes
# them; the v2 schemas state them): one input tensor of images, two outputs.
OIP_INPUT_NAME = "images"
OIP_PROBABILITIES = "probabilities"
OIP_DIGIT = "digit"
OIP_OUTPUT_NAMES = (OIP_PROBABILITIES, OIP_DIGIT)
OIP_INPUT_DATATYPES = ("FP32", "UINT8")
OIP_MAX_IMAGE_AXES = 3  # [n, 28, 28]
