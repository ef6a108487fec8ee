"""MNIST's geometry, which the spec, training, image normalisation and serving all agree on."""

from __future__ import annotations

SIDE = 28
IMAGE_SHAPE: tuple[int, int] = (SIDE, SIDE)
PIXELS = SIDE * SIDE
CLASSES = 10
