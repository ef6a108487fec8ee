"""A Keras net's forward pass in numpy, for the layers where that is simple and exact enough.

For one 28x28 image the frozen TensorFlow graph spends far more time entering and leaving its
session (and waking its thread pool on a busy machine) than multiplying: the notebook's Dense
and BatchNormalization nets answer in a few tens of microseconds in numpy against a few
hundred through TensorFlow. `numpy_forward` reads the weights once, at load, and returns None
for any net with a layer or activation it does not implement, so that net keeps TensorFlow.
`service.ml.inference` also checks its answers against TensorFlow's before serving them.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

Step = Callable[[np.ndarray], np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow for large negative x, as 1 / (1 + exp(-x)) would have.
    return np.float32(0.5) * (np.tanh(np.float32(0.5) * x) + np.float32(1.0))


def _elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(x > 0, x, np.float32(alpha) * np.expm1(np.minimum(x, 0)))


def _softmax(x: np.ndarray) -> np.ndarray:
    exp = np.exp(x - x.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 6)


# Keras's SELU constants.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

ACTIVATIONS: dict[str, Step] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": _relu6,
    "elu": _elu,
    "selu": lambda x: np.float32(_SELU_SCALE) * _elu(x, _SELU_ALPHA),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda x: _relu6(x + np.float32(3.0)) / np.float32(6.0),
    "softmax": _softmax,
    "leaky_relu": lambda x: np.where(x >= 0, x, np.float32(0.2) * x),  # Keras's default slope
    "swish": lambda x: x * _sigmoid(x),
    "silu": lambda x: x * _sigmoid(x),
    "softplus": lambda x: np.logaddexp(np.float32(0.0), x),
    "softsign": lambda x: x / (np.float32(1.0) + np.abs(x)),
    "exponential": np.exp,
}
# Identity at inference.
PASS_THROUGH = (
    keras.layers.Dropout,
    keras.layers.AlphaDropout,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
)


def numpy_forward(model: keras.Model) -> Callable[[np.ndarray], np.ndarray] | None:
    """float32 [n, ...] -> the model's float32 output, or None if a layer is not implemented."""
    if not isinstance(model, keras.Sequential):
        return None
    steps: list[Step] = []
    for layer in model.layers:
        if any(weight.dtype != "float32" for weight in layer.weights):
            return None  # mixed precision: TensorFlow rounds where numpy would not
        step = _step(layer)
        if step is None:
            return None
        steps.append(step)

    def forward(batch: np.ndarray) -> np.ndarray:
        for step in steps:
            batch = step(batch)
        return batch

    return forward


def _step(layer: keras.layers.Layer) -> Step | None:
    """One layer at inference, its weights read now; None if it is not one of ours."""
    config = layer.get_config()
    if isinstance(layer, PASS_THROUGH):
        return lambda x: x
    if isinstance(layer, keras.layers.Flatten):
        return lambda x: x.reshape(len(x), -1)
    if isinstance(layer, keras.layers.Reshape):
        shape = tuple(config["target_shape"])
        return lambda x: x.reshape(len(x), *shape)
    if isinstance(layer, keras.layers.Dense):
        return _dense(layer, config)
    if isinstance(layer, keras.layers.Activation):
        return _activation(config["activation"])
    if isinstance(layer, keras.layers.BatchNormalization):
        return _batch_normalization(layer, config)
    if isinstance(layer, keras.layers.LeakyReLU):
        slope = np.float32(config["negative_slope"])
        return lambda x: np.where(x >= 0, x, slope * x)
    if isinstance(layer, keras.layers.ELU):
        alpha = float(config["alpha"])
        return lambda x: _elu(x, alpha)
    if isinstance(layer, keras.layers.ReLU):
        if config["negative_slope"] or config["threshold"]:
            return None
        if config["max_value"] is None:
            return ACTIVATIONS["relu"]
        top = np.float32(config["max_value"])
        return lambda x: np.clip(x, 0, top)
    if isinstance(layer, keras.layers.PReLU):
        slopes = np.asarray(layer.alpha.numpy(), dtype=np.float32)  # broadcast over shared axes
        return lambda x: np.where(x >= 0, x, slopes * x)
    return None


def _activation(name: object) -> Step | None:
    return ACTIVATIONS.get(name) if isinstance(name, str) else None


def _dense(layer: keras.layers.Dense, config: dict[str, object]) -> Step | None:
    activation = _activation(config["activation"])
    if activation is None or config.get("lora_rank"):
        return None
    kernel = np.asarray(layer.kernel.numpy(), dtype=np.float32)
    if layer.bias is None:
        return lambda x: activation(x @ kernel)
    bias = np.asarray(layer.bias.numpy(), dtype=np.float32)
    return lambda x: activation(x @ kernel + bias)


def _batch_normalization(
    layer: keras.layers.BatchNormalization, config: dict[str, object]
) -> Step | None:
    if config["axis"] not in (-1, len(layer.input.shape) - 1):
        return None  # only the last axis: one scale and offset per feature
    # Keras at inference: (x - mean) / sqrt(var + eps) * gamma + beta, as x * inv + offset.
    epsilon = float(config["epsilon"])  # type: ignore[arg-type]
    mean = layer.moving_mean.numpy().astype(np.float32)
    inverse = 1.0 / np.sqrt(layer.moving_variance.numpy().astype(np.float32) + np.float32(epsilon))
    if layer.gamma is not None:
        inverse = inverse * layer.gamma.numpy()
    offset = -mean * inverse
    if layer.beta is not None:
        offset = offset + layer.beta.numpy()
    inverse, offset = inverse.astype(np.float32), offset.astype(np.float32)
    return lambda x: x * inverse + offset
