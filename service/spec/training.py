"""Keras `compile(...)` and `fit(...)` arguments as JSON, with Keras's defaults."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

LearningRate = Annotated[float, Field(gt=0.0, le=10.0)]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]
Epsilon = Annotated[float, Field(gt=0.0, le=1.0)]


class _Optimizer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SGD(_Optimizer):
    type: Literal["SGD"]
    learning_rate: LearningRate = 0.01
    momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    nesterov: bool = False


class Adagrad(_Optimizer):
    type: Literal["Adagrad"]
    learning_rate: LearningRate = 0.001
    # Unbounded above, so refuse Infinity: JSON stores it as null, and the spec would not reload.
    initial_accumulator_value: float = Field(default=0.1, ge=0.0, allow_inf_nan=False)
    epsilon: Epsilon = 1e-7


class RMSprop(_Optimizer):
    type: Literal["RMSprop"]
    learning_rate: LearningRate = 0.001
    rho: Beta = 0.9
    momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    epsilon: Epsilon = 1e-7
    centered: bool = False


class Adam(_Optimizer):
    type: Literal["Adam"]
    learning_rate: LearningRate = 0.001
    beta_1: Beta = 0.9
    beta_2: Beta = 0.999
    epsilon: Epsilon = 1e-7
    amsgrad: bool = False


class Adamax(_Optimizer):
    type: Literal["Adamax"]
    learning_rate: LearningRate = 0.001
    beta_1: Beta = 0.9
    beta_2: Beta = 0.999
    epsilon: Epsilon = 1e-7


class Nadam(_Optimizer):
    type: Literal["Nadam"]
    learning_rate: LearningRate = 0.001
    beta_1: Beta = 0.9
    beta_2: Beta = 0.999
    epsilon: Epsilon = 1e-7


Optimizer = Annotated[SGD | Adagrad | RMSprop | Adam | Adamax | Nadam, Field(discriminator="type")]
OPTIMIZER_TYPES = ("SGD", "Adagrad", "RMSprop", "Adam", "Adamax", "Nadam")
_BY_LOWER_NAME = {name.lower(): name for name in OPTIMIZER_TYPES}


Metric = Literal["accuracy"]


class CompileSpec(BaseModel):
    """What `model.compile(...)` takes; the optimizer may be a name, as Keras allows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: Optimizer
    loss: Literal["sparse_categorical_crossentropy"] = "sparse_categorical_crossentropy"
    metrics: list[Metric] = Field(default_factory=lambda: list[Metric](["accuracy"]))

    @model_validator(mode="before")
    @classmethod
    def _optimizer_by_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("optimizer"), str):
            name = data["optimizer"]
            data = {**data, "optimizer": {"type": _BY_LOWER_NAME.get(name.lower(), name)}}
        return data


Monitor = Literal["val_loss", "val_accuracy", "loss", "accuracy"]


class EarlyStoppingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    monitor: Monitor = "val_loss"
    patience: int = Field(default=0, ge=0, le=1000)
    # Unbounded above, so refuse Infinity: JSON stores it as null, and the spec would not reload.
    min_delta: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    restore_best_weights: bool = False


TRAIN_IMAGES = 60_000


class FitSpec(BaseModel):
    """What `model.fit(...)` takes, plus how MNIST is split."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(default=10, ge=1, le=1000)
    batch_size: int = Field(default=32, ge=1, le=8192)
    validation_size: int = Field(
        default=5000,
        ge=0,
        le=30_000,
        description="the first N training images are held out for validation, as in the notebook",
    )
    train_size: int | None = Field(
        default=None,
        ge=1,
        description="train on only the first N of the remaining images (quick runs); all if unset",
    )
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="same spec + seed = same history")
    early_stopping: EarlyStoppingSpec | None = None
    layer_health: bool = Field(
        default=True,
        description="measure every layer's gradients, weights and activations after each epoch",
    )

    @model_validator(mode="after")
    def _consistent_split(self) -> FitSpec:
        available = TRAIN_IMAGES - self.validation_size
        if self.train_size is not None and self.train_size > available:
            raise ValueError(
                f"train_size {self.train_size} is more than the {available} training images "
                f"left after holding out validation_size={self.validation_size}"
            )
        if (
            self.early_stopping is not None
            and self.early_stopping.monitor.startswith("val_")
            and self.validation_size == 0
        ):
            raise ValueError(
                f"early_stopping monitors {self.early_stopping.monitor!r} but validation_size "
                "is 0: hold out validation images or monitor 'loss' / 'accuracy'"
            )
        return self
