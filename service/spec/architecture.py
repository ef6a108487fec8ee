"""Shape and parameter inference for a layer list, without TensorFlow.

The API rejects impossible nets (a Conv2D on a flattened tensor, a last layer that is not
10 probabilities) with a message naming the layer, before anything is built or queued.
The authoritative summary still comes from really building the Keras model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.mnist import CLASSES, IMAGE_SHAPE
from service.spec import layers as spec_layers
from service.spec.layers import Layer as LayerSpec

# No tensor axis may be longer, and no layer's output per image larger: beyond them TensorFlow's
# 32-bit index arithmetic breaks, and long before them the memory cap (MAX_ACTIVATION_BYTES)
# refuses the net anyway. Checked here so that no size ever overflows on its way to Keras.
MAX_DIMENSION = 2**24
MAX_LAYER_VALUES = 2**31 - 1

LAST_LAYER_HINT = (
    'end the net with {"type": "Dense", "units": 10, "activation": "softmax"} '
    '(or a Dense with 10 units followed by {"type": "Activation", "activation": "softmax"})'
)


class ArchitectureError(ValueError):
    """A layer cannot take the tensor the previous layer gives it."""


@dataclass(frozen=True)
class InferredLayer:
    output_shape: tuple[int, ...]
    params: int
    trainable_params: int


def _spatial(size: int, window: int, stride: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1


def _infer_one(index: int, layer: LayerSpec, shape: tuple[int, ...]) -> InferredLayer:
    where = f"layers[{index}] ({layer.type})"
    match layer:
        case spec_layers.Flatten():
            return InferredLayer((math.prod(shape),), 0, 0)
        case spec_layers.Dense():
            params = shape[-1] * layer.units + (layer.units if layer.use_bias else 0)
            return InferredLayer((*shape[:-1], layer.units), params, params)
        case spec_layers.BatchNormalization():
            features = shape[-1]
            return InferredLayer(shape, 4 * features, 2 * features)
        case (
            spec_layers.ActivationLayer()
            | spec_layers.LeakyReLU()
            | spec_layers.ELU()
            | spec_layers.ReLU()
            | spec_layers.Dropout()
            | spec_layers.AlphaDropout()
        ):
            return InferredLayer(shape, 0, 0)
        case spec_layers.PReLU():
            shared = set(layer.shared_axes or ())
            if any(axis > len(shape) for axis in shared):
                raise ArchitectureError(
                    f"{where}: shared_axes {sorted(shared)} name axes its {len(shape)}-axis "
                    f"input {shape} does not have; use axes 1 to {len(shape)}"
                )
            # One learnt slope per input value, except along the shared axes.
            slopes = math.prod(1 if axis + 1 in shared else size for axis, size in enumerate(shape))
            return InferredLayer(shape, slopes, slopes)
        case spec_layers.Reshape():
            target = tuple(layer.target_shape)
            if math.prod(target) != math.prod(shape):
                raise ArchitectureError(
                    f"{where}: cannot reshape {shape} ({math.prod(shape)} values) into "
                    f"{target} ({math.prod(target)} values)"
                )
            return InferredLayer(target, 0, 0)
        case spec_layers.Conv2D() | spec_layers.MaxPooling2D():
            return _infer_window(where, layer, shape)
    raise ArchitectureError(f"{where}: unsupported layer")  # pragma: no cover - union is closed


def _infer_window(
    where: str, layer: spec_layers.Conv2D | spec_layers.MaxPooling2D, shape: tuple[int, ...]
) -> InferredLayer:
    """A convolution or a pooling: a window slid over a (height, width, channels) tensor."""
    if len(shape) != 3:
        raise ArchitectureError(
            f"{where} needs a (height, width, channels) tensor but gets {shape}; "
            + (
                'put {"type": "Reshape", "target_shape": [28, 28, 1]} before it'
                if len(shape) == 2
                else "it cannot follow a Flatten or a Dense on a flat tensor; "
                "put convolutions and pooling before the Flatten"
            )
        )
    height, width, channels = shape
    if isinstance(layer, spec_layers.Conv2D):
        (kh, kw), (sh, sw) = layer.kernel, layer.stride
    else:
        (kh, kw), (sh, sw) = layer.pool, layer.stride
    out_h = _spatial(height, kh, sh, layer.padding)
    out_w = _spatial(width, kw, sw, layer.padding)
    if out_h < 1 or out_w < 1:
        raise ArchitectureError(
            f"{where}: a {kh}x{kw} window does not fit the {height}x{width} input; "
            'use a smaller window or padding "same"'
        )
    if isinstance(layer, spec_layers.MaxPooling2D):
        return InferredLayer((out_h, out_w, channels), 0, 0)
    params = kh * kw * channels * layer.filters + (layer.filters if layer.use_bias else 0)
    return InferredLayer((out_h, out_w, layer.filters), params, params)


def infer_architecture(layers: list[LayerSpec]) -> list[InferredLayer]:
    """Output shape and parameter counts of each layer Keras builds (an Input is not one);
    raises ArchitectureError on a bad net."""
    if not layers:
        raise ArchitectureError(f"give at least one layer; {LAST_LAYER_HINT}")
    _check_input_first(layers)
    inferred: list[InferredLayer] = []
    shape: tuple[int, ...] = IMAGE_SHAPE
    for index, layer in enumerate(layers):
        if isinstance(layer, spec_layers.Input):
            continue
        result = _infer_one(index, layer, shape)
        _check_size(index, layer, result.output_shape)
        inferred.append(result)
        shape = result.output_shape
    _check_probabilities(layers, shape)
    return inferred


def _check_size(index: int, layer: LayerSpec, shape: tuple[int, ...]) -> None:
    values = math.prod(shape)
    if max(shape) > MAX_DIMENSION or values > MAX_LAYER_VALUES:
        raise ArchitectureError(
            f"layers[{index}] ({layer.type}) gives a tensor of shape {shape} ({values:,} values "
            f"per image); a layer may give at most {MAX_LAYER_VALUES:,} values per image, none "
            f"of its axes longer than {MAX_DIMENSION:,}: use fewer units, filters or a smaller "
            "target_shape"
        )


def _check_input_first(layers: list[LayerSpec]) -> None:
    """The input shape is said once, first, as Keras reads it; anywhere else it means nothing."""
    for index, layer in enumerate(layers):
        if index > 0 and isinstance(layer, spec_layers.Input):
            raise ArchitectureError(
                f"layers[{index}] (Input): an Input can only be the first layer"
            )
        given = not isinstance(layer, spec_layers.Input) and layer.input_shape is not None
        if index > 0 and given:
            raise ArchitectureError(
                f"layers[{index}] ({layer.type}): input_shape only means something on the "
                "first layer; remove it here"
            )


def _check_probabilities(layers: list[LayerSpec], shape: tuple[int, ...]) -> None:
    last = layers[-1]
    ends_in_softmax = (isinstance(last, spec_layers.Dense) and last.activation == "softmax") or (
        isinstance(last, spec_layers.ActivationLayer) and last.activation == "softmax"
    )
    if shape != (CLASSES,) or not ends_in_softmax:
        hint = LAST_LAYER_HINT
        if len(shape) > 1:
            # Keras applies a Dense to the last axis only: on the 28x28 image it gives (28, 10).
            hint = (
                'add {"type": "Flatten"} before the first Dense: a Dense works on the last axis '
                "only and keeps the others (on the 28x28 image, one output row per image row)"
            )
        raise ArchitectureError(
            f"layers[{len(layers) - 1}] ({last.type}): the last layer gives "
            f"{'softmax' if ends_in_softmax else 'non-softmax'} output of "
            f"shape {shape}, but sparse_categorical_crossentropy needs 10 probabilities of "
            f"shape (10,): {hint}"
        )
