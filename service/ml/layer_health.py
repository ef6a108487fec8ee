"""Layer health at the end of every epoch: gradients, weights, updates and activations.

Measured on a fixed probe batch (the first PROBE_IMAGES validation images), in inference mode,
by one traced function: a forward pass that keeps each measured layer's activations and one
GradientTape for the loss's gradient with respect to each measured weight. That costs about
one training batch of PROBE_IMAGES images per epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from service.insight.layers import PROBE_IMAGES, LayerStats

# Activation layers that follow a layer with weights (Dense with no activation, then LeakyReLU).
_ACTIVATION_LAYERS = {"Activation", "LeakyReLU", "ReLU", "ELU", "PReLU", "Softmax"}
_LAYER_ACTIVATIONS = {"LeakyReLU": "leaky_relu", "ReLU": "relu", "ELU": "elu", "PReLU": "prelu"}
RELU_FAMILY = frozenset({"relu", "relu6"})
"""Activations whose gradient is exactly 0 for negative inputs: their units can die."""
# How close to a bound an activation must be to count as saturated: sigmoid's slope there is
# below 0.01, a quarter-percent of its peak, so such a unit barely passes a gradient.
SATURATION_MARGIN = 0.01
_BOUNDS = {"sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0)}
_BOUNDS["tanh"] = (-1.0, 1.0)

Sink = Callable[[int, list[LayerStats]], None]


def _activation_name(layer: keras.layers.Layer) -> str:
    kind = type(layer).__name__
    if kind in _LAYER_ACTIVATIONS:
        return _LAYER_ACTIVATIONS[kind]
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    return str(name) if name else "linear"


def _measured_weight(layer: keras.layers.Layer) -> tuple[str, Any] | None:
    if getattr(layer, "kernel", None) is not None and layer.trainable:
        return "kernel", layer.kernel
    if getattr(layer, "gamma", None) is not None and layer.trainable:
        return "gamma", layer.gamma
    return None


class _Measured:
    """A layer with a weight, and the layer whose output is its activation."""

    def __init__(self, layers: list[keras.layers.Layer], index: int, weight: tuple[str, Any]):
        self.layer = layers[index]
        self.weight_name, self.weight = weight
        self.output_layer = self.layer
        following = layers[index + 1] if index + 1 < len(layers) else None
        if (
            following is not None
            and type(following).__name__ in _ACTIVATION_LAYERS
            and _activation_name(self.layer) == "linear"
        ):
            self.output_layer = following
        self.activation = _activation_name(self.output_layer)


def _stats_of_activations(values: np.ndarray, activation: str) -> tuple[float | None, ...]:
    units = values.reshape(-1, values.shape[-1])  # Conv2D: positions pooled, a channel a unit
    dead = float(np.mean(~(units > 0).any(axis=0))) if activation in RELU_FAMILY else None
    saturated = None
    if activation in _BOUNDS:
        low, high = _BOUNDS[activation]
        near = (units <= low + SATURATION_MARGIN) | (units >= high - SATURATION_MARGIN)
        saturated = float(np.mean(near))
    return dead, saturated


class LayerHealth(keras.callbacks.Callback):
    """Measures every layer with weights at each epoch end and hands the figures to `sink`.

    Put it before the callback that records the epoch, so the figures are ready first.
    """

    def __init__(self, x_probe: np.ndarray, y_probe: np.ndarray, sink: Sink) -> None:
        super().__init__()
        self.x_probe = tf.constant(x_probe[:PROBE_IMAGES])
        self.y_probe = tf.constant(y_probe[:PROBE_IMAGES])
        self.sink = sink
        self._measured: list[_Measured] = []
        self._previous: list[np.ndarray] = []
        self._probe: Callable[..., Any] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        layers = list(self.model.layers)
        self._measured = [
            _Measured(layers, index, weight)
            for index, layer in enumerate(layers)
            if (weight := _measured_weight(layer)) is not None
        ]
        self._previous = [np.array(m.weight.numpy()) for m in self._measured]
        probe_model = keras.Model(
            self.model.inputs,
            [m.output_layer.output for m in self._measured] + [self.model.outputs[0]],
        )
        weights = [m.weight for m in self._measured]

        # Eager, not a tf.function: once an epoch on 512 images it costs milliseconds either
        # way, and a warm training process that builds one per training (a study's trials)
        # had TensorFlow retrace it every time ("triggered tf.function retracing").
        def probe(x: tf.Tensor, y: tf.Tensor) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
            with tf.GradientTape() as tape:
                *activations, probabilities = probe_model(x, training=False)
                loss = tf.reduce_mean(
                    keras.losses.sparse_categorical_crossentropy(y, probabilities)
                )
            return activations, tape.gradient(loss, weights)

        self._probe = probe

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._probe is None or not self._measured:
            return
        activations, gradients = self._probe(self.x_probe, self.y_probe)
        stats = []
        for depth, (measured, values, gradient) in enumerate(
            zip(self._measured, activations, gradients, strict=True), start=1
        ):
            weight = np.array(measured.weight.numpy())
            weight_norm = float(np.linalg.norm(weight))
            update = float(np.linalg.norm(weight - self._previous[depth - 1]))
            self._previous[depth - 1] = weight
            values = np.asarray(values)
            dead, saturated = _stats_of_activations(values, measured.activation)
            gradient_norm = float(tf.norm(gradient)) if gradient is not None else None
            stats.append(
                LayerStats(
                    depth=depth,
                    name=measured.layer.name,
                    type=type(measured.layer).__name__,
                    weight=measured.weight_name,
                    activation=measured.activation,
                    gradient_norm=_finite(gradient_norm),
                    weight_norm=_finite(weight_norm),
                    update_ratio=_finite(update / weight_norm) if weight_norm > 0 else None,
                    activation_mean=_finite(float(values.mean())),
                    activation_std=_finite(float(values.std())),
                    dead_fraction=dead,
                    saturated_fraction=saturated,
                )
            )
        self.sink(epoch + 1, stats)


def _finite(value: float | None) -> float | None:
    return value if value is not None and np.isfinite(value) else None
