"""Keras layers as JSON: Keras class names, Keras argument names, Keras defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

Activation = Literal[
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
Initializer = Literal[
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
Padding = Literal["valid", "same"]

MAX_UNITS = 16_384
MAX_FILTERS = 2_048
MAX_KERNEL = 28


class _Layer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Flatten(_Layer):
    type: Literal["Flatten"]


class Dense(_Layer):
    type: Literal["Dense"]
    units: int = Field(ge=1, le=MAX_UNITS, description="number of neurons")
    activation: Activation | None = None
    kernel_initializer: Initializer = "glorot_uniform"
    use_bias: bool = True


class ActivationLayer(_Layer):
    type: Literal["Activation"]
    activation: Activation


class LeakyReLU(_Layer):
    type: Literal["LeakyReLU"]
    negative_slope: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        validation_alias=AliasChoices("negative_slope", "alpha"),
        description="slope for x < 0; older Keras called it alpha",
    )


class BatchNormalization(_Layer):
    type: Literal["BatchNormalization"]
    momentum: float = Field(default=0.99, ge=0.0, le=1.0)
    epsilon: float = Field(default=0.001, gt=0.0, le=1.0)


class Dropout(_Layer):
    type: Literal["Dropout"]
    rate: float = Field(ge=0.0, lt=1.0, description="fraction of inputs dropped, in [0, 1)")


def _pair(value: int | list[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if len(value) != 2:
        raise ValueError("give one integer or a list of two integers [height, width]")
    return (value[0], value[1])


IntOrPair = int | Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]


class Conv2D(_Layer):
    type: Literal["Conv2D"]
    filters: int = Field(ge=1, le=MAX_FILTERS)
    kernel_size: IntOrPair = Field(description="an integer or [height, width]")
    strides: IntOrPair = 1
    padding: Padding = "valid"
    activation: Activation | None = None
    kernel_initializer: Initializer = "glorot_uniform"
    use_bias: bool = True

    @field_validator("kernel_size", "strides")
    @classmethod
    def _positive_and_small(cls, value: int | list[int]) -> int | list[int]:
        if any(not 1 <= v <= MAX_KERNEL for v in _pair(value)):
            raise ValueError(f"must be between 1 and {MAX_KERNEL}")
        return value

    @property
    def kernel(self) -> tuple[int, int]:
        return _pair(self.kernel_size)

    @property
    def stride(self) -> tuple[int, int]:
        return _pair(self.strides)


class MaxPooling2D(_Layer):
    type: Literal["MaxPooling2D"]
    pool_size: IntOrPair = 2
    strides: IntOrPair | None = None
    padding: Padding = "valid"

    @field_validator("pool_size", "strides")
    @classmethod
    def _positive_and_small(cls, value: int | list[int] | None) -> int | list[int] | None:
        if value is not None and any(not 1 <= v <= MAX_KERNEL for v in _pair(value)):
            raise ValueError(f"must be between 1 and {MAX_KERNEL}")
        return value

    @property
    def pool(self) -> tuple[int, int]:
        return _pair(self.pool_size)

    @property
    def stride(self) -> tuple[int, int]:
        return _pair(self.strides) if self.strides is not None else self.pool


class Reshape(_Layer):
    type: Literal["Reshape"]
    target_shape: list[Annotated[int, Field(ge=1)]] = Field(
        min_length=1, max_length=3, description="output shape without the batch axis"
    )


Layer = Annotated[
    Flatten
    | Dense
    | ActivationLayer
    | LeakyReLU
    | BatchNormalization
    | Dropout
    | Conv2D
    | MaxPooling2D
    | Reshape,
    Field(discriminator="type"),
]
LAYER_TYPES = (
    "Flatten",
    "Dense",
    "Activation",
    "LeakyReLU",
    "BatchNormalization",
    "Dropout",
    "Conv2D",
    "MaxPooling2D",
    "Reshape",
)
