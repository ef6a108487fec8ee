"""Keras layers as JSON: Keras class names, Keras argument names, Keras defaults."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import AliasChoices, BeforeValidator, Field, field_validator
from pydantic.config import JsonDict

from service.mnist import IMAGE_SHAPE
from service.spec.base import Bool, Float, Int, PositiveInt, SpecModel
from service.spec.regularizers import Constraint, Regularizer
from service.spec.suggestions import choice, known_type, spec_error

ActivationName = Literal[
    "relu",
    "elu",
    "selu",
    "tanh",
    "sigmoid",
    "softmax",
    "leaky_relu",
    "linear",
    "gelu",
    "swish",
    "silu",
    "softplus",
    "softsign",
    "hard_sigmoid",
    "exponential",
    "relu6",
]
InitializerName = Literal[
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "orthogonal",
    "zeros",
    "ones",
]
ACTIVATIONS: tuple[str, ...] = get_args(ActivationName)
INITIALIZERS: tuple[str, ...] = get_args(InitializerName)
Activation = Annotated[ActivationName, choice("activation", ActivationName)]
Initializer = Annotated[InitializerName, choice("initializer", InitializerName)]
PaddingName = Literal["valid", "same"]
Padding = Annotated[PaddingName, choice("padding", PaddingName)]
Rate = Annotated[Float, Field(ge=0.0, lt=1.0, description="fraction of inputs dropped, in [0, 1)")]

MAX_UNITS = 16_384
MAX_FILTERS = 2_048
MAX_KERNEL = 28

# What Keras 1 and 2 called today's arguments; the notebook's readers meet them in old posts.
KERAS_2_NAMES = {
    "output_dim": "units",
    "init": "kernel_initializer",
    "nb_filter": "filters",
    "nb_row": "kernel_size",
    "nb_col": "kernel_size",
    "border_mode": "padding",
    "subsample": "strides",
    "pool_length": "pool_size",
    "W_regularizer": "kernel_regularizer",
    "W_constraint": "kernel_constraint",
    "bias": "use_bias",
    "p": "rate",
    "dims": "target_shape",
}
FED_SHAPE_HINT = (
    "the service feeds MNIST's 28x28 images itself, so the input shape can only be [28, 28] "
    "(or leave it out); reshape inside the net instead, e.g. "
    '{"type": "Reshape", "target_shape": [28, 28, 1]} before a Conv2D'
)


# The schema says what `_fed_shape` checks: [28, 28] and nothing else.
FED_SHAPE_SCHEMA: JsonDict = {
    "type": "array",
    "items": {"type": "integer"},
    "const": list(IMAGE_SHAPE),
}


def _fed_shape(value: list[int] | None) -> list[int] | None:
    if value is not None and tuple(value) != IMAGE_SHAPE:
        raise spec_error("input_shape", f"{list(value)}: {FED_SHAPE_HINT}")
    return value


class _Layer(SpecModel):
    RENAMED: ClassVar[dict[str, str]] = KERAS_2_NAMES
    REMOVED: ClassVar[dict[str, str]] = {
        "input_dim": 'the service feeds 28x28 images; start the net with {"type": "Flatten"}'
    }

    # Keras 2's way to give the first layer its input; dropped when building, as Keras 3 does.
    input_shape: list[Int] | None = Field(
        default=None,
        exclude=True,
        json_schema_extra={"anyOf": [FED_SHAPE_SCHEMA, {"type": "null"}]},
        description="only [28, 28], and only on the first layer (the notebook's Keras 2 style)",
    )

    _fed = field_validator("input_shape")(_fed_shape)


class Input(SpecModel):
    """`keras.Input(shape=[28, 28])` written first; the model always gets its Input anyway."""

    RENAMED: ClassVar[dict[str, str]] = {"input_shape": "shape", "batch_shape": "shape"}

    type: Literal["Input"]
    shape: list[Int] = Field(
        description="[28, 28]: MNIST's images, fed by the service",
        json_schema_extra=FED_SHAPE_SCHEMA,
    )

    _fed = field_validator("shape")(_fed_shape)


class Flatten(_Layer):
    type: Literal["Flatten"]


class Dense(_Layer):
    type: Literal["Dense"]
    units: Annotated[Int, Field(ge=1, le=MAX_UNITS, description="number of neurons")]
    activation: Activation | None = None
    kernel_initializer: Initializer = "glorot_uniform"
    use_bias: Bool = True
    kernel_regularizer: Regularizer | None = None
    kernel_constraint: Constraint | None = None


class ActivationLayer(_Layer):
    type: Literal["Activation"]
    activation: Activation


class LeakyReLU(_Layer):
    type: Literal["LeakyReLU"]
    negative_slope: Float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        validation_alias=AliasChoices("negative_slope", "alpha"),
        description="slope for x < 0; older Keras called it alpha",
    )


class PReLU(_Layer):
    """A LeakyReLU whose slope is learnt: one parameter per input value, less shared axes."""

    type: Literal["PReLU"]
    alpha_initializer: Initializer = "zeros"
    shared_axes: list[Annotated[Int, Field(ge=1, le=3)]] | None = Field(
        default=None, max_length=3, description="axes (1 = first after the batch) sharing a slope"
    )


class ELU(_Layer):
    type: Literal["ELU"]
    alpha: Annotated[Float, Field(ge=0.0, le=10.0)] = 1.0


class ReLU(_Layer):
    type: Literal["ReLU"]
    max_value: Annotated[Float, Field(ge=0.0, allow_inf_nan=False)] | None = None
    negative_slope: Annotated[Float, Field(ge=0.0, le=1.0)] = 0.0
    # Keras refuses a negative threshold (and max_value, negative_slope) when it builds the layer.
    threshold: Annotated[Float, Field(ge=0.0, allow_inf_nan=False)] = 0.0


class BatchNormalization(_Layer):
    type: Literal["BatchNormalization"]
    momentum: Annotated[Float, Field(ge=0.0, le=1.0)] = 0.99
    epsilon: Annotated[Float, Field(gt=0.0, le=1.0)] = 0.001


class Dropout(_Layer):
    type: Literal["Dropout"]
    rate: Rate


class AlphaDropout(_Layer):
    """Dropout that keeps SELU's self-normalisation (mean and variance) intact."""

    type: Literal["AlphaDropout"]
    rate: Rate


def _pair(value: int | list[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (value[0], value[1])


def _window(value: int | list[int] | None) -> int | list[int] | None:
    if value is not None and any(not 1 <= v <= MAX_KERNEL for v in _pair(value)):
        raise spec_error("value_error", f"must be between 1 and {MAX_KERNEL}")
    return value


def _int_or_list(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 23.0 is an integer to JSON, and to the schema
    if isinstance(value, bool) or not isinstance(value, int | list):
        raise spec_error("int_type", f"must be an integer or [height, width], not {value!r}")
    return value


IntOrPair = Annotated[
    Int | Annotated[list[PositiveInt], Field(min_length=2, max_length=2)],
    BeforeValidator(_int_or_list),
]


# What _window checks, in the schema: each side 1 to MAX_KERNEL.
_SIDE: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_KERNEL}
WINDOW_SCHEMA: dict[str, Any] = {
    "anyOf": [_SIDE, {"type": "array", "items": _SIDE, "minItems": 2, "maxItems": 2}]
}
OPTIONAL_WINDOW_SCHEMA: dict[str, Any] = {"anyOf": [*WINDOW_SCHEMA["anyOf"], {"type": "null"}]}


class Conv2D(_Layer):
    type: Literal["Conv2D"]
    filters: Annotated[Int, Field(ge=1, le=MAX_FILTERS)]
    kernel_size: IntOrPair = Field(
        description="an integer or [height, width]", json_schema_extra=WINDOW_SCHEMA
    )
    strides: IntOrPair = Field(default=1, json_schema_extra=WINDOW_SCHEMA)
    padding: Padding = "valid"
    activation: Activation | None = None
    kernel_initializer: Initializer = "glorot_uniform"
    use_bias: Bool = True
    kernel_regularizer: Regularizer | None = None
    kernel_constraint: Constraint | None = None

    _positive_and_small = field_validator("kernel_size", "strides")(_window)

    @property
    def kernel(self) -> tuple[int, int]:
        return _pair(self.kernel_size)

    @property
    def stride(self) -> tuple[int, int]:
        return _pair(self.strides)


class MaxPooling2D(_Layer):
    type: Literal["MaxPooling2D"]
    pool_size: IntOrPair = Field(default=2, json_schema_extra=WINDOW_SCHEMA)
    strides: IntOrPair | None = Field(default=None, json_schema_extra=OPTIONAL_WINDOW_SCHEMA)
    padding: Padding = "valid"

    _positive_and_small = field_validator("pool_size", "strides")(_window)

    @property
    def pool(self) -> tuple[int, int]:
        return _pair(self.pool_size)

    @property
    def stride(self) -> tuple[int, int]:
        return _pair(self.strides) if self.strides is not None else self.pool


class Reshape(_Layer):
    type: Literal["Reshape"]
    target_shape: list[PositiveInt] = Field(
        min_length=1, max_length=3, description="output shape without the batch axis"
    )


_LayerClasses = (
    Input
    | Flatten
    | Dense
    | ActivationLayer
    | LeakyReLU
    | PReLU
    | ELU
    | ReLU
    | BatchNormalization
    | Dropout
    | AlphaDropout
    | Conv2D
    | MaxPooling2D
    | Reshape
)
Layer = Annotated[
    _LayerClasses,
    Field(discriminator="type"),
    known_type(_LayerClasses, what="layer", by_name=False),
]
LAYER_TYPES = (
    "Input",
    "Flatten",
    "Dense",
    "Activation",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "ReLU",
    "BatchNormalization",
    "Dropout",
    "AlphaDropout",
    "Conv2D",
    "MaxPooling2D",
    "Reshape",
)
