"""Keras `compile(...)` and `fit(...)` arguments as JSON, with Keras's defaults."""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from service.spec.base import Bool, Float, Int, SpecModel
from service.spec.optimizers import Optimizer
from service.spec.suggestions import choice, spec_error

MetricName = Literal["accuracy"]
Metric = Annotated[MetricName, choice("metric", MetricName)]
LossName = Literal["sparse_categorical_crossentropy"]


class CompileSpec(SpecModel):
    """What `model.compile(...)` takes; the optimizer may be a name, as Keras allows."""

    WHAT: ClassVar[str] = "compile"

    optimizer: Optimizer
    loss: Annotated[LossName, choice("loss", LossName)] = "sparse_categorical_crossentropy"
    metrics: list[Metric] = Field(default_factory=lambda: list[Metric](["accuracy"]))


MonitorName = Literal["val_loss", "val_accuracy", "loss", "accuracy"]
Monitor = Annotated[MonitorName, choice("monitor", MonitorName)]
Patience = Annotated[Int, Field(ge=0, le=1000)]
# Unbounded above, so refuse Infinity: JSON stores it as null, and the spec would not reload.
MinDelta = Annotated[Float, Field(ge=0.0, allow_inf_nan=False)]


class EarlyStoppingSpec(SpecModel):
    WHAT: ClassVar[str] = "early_stopping"

    monitor: Monitor = "val_loss"
    patience: Patience = 0
    min_delta: MinDelta = 0.0
    restore_best_weights: Bool = False


class ReduceLROnPlateauSpec(SpecModel):
    """`keras.callbacks.ReduceLROnPlateau`: multiply the rate by `factor` when `monitor` stalls."""

    WHAT: ClassVar[str] = "reduce_lr_on_plateau"
    RENAMED: ClassVar[dict[str, str]] = {"epsilon": "min_delta", "min_learning_rate": "min_lr"}

    monitor: Monitor = "val_loss"
    factor: Annotated[Float, Field(gt=0.0, lt=1.0)] = 0.1
    patience: Patience = 10
    min_delta: MinDelta = 1e-4
    cooldown: Patience = 0
    min_lr: Annotated[Float, Field(ge=0.0, le=10.0)] = 0.0


TRAIN_IMAGES = 60_000
DEFAULT_VALIDATION_SIZE = 5000


FED_BY_SERVICE = "the service feeds MNIST's training images and labels itself"


class FitSpec(SpecModel):
    """What `model.fit(...)` takes, plus how MNIST is split."""

    WHAT: ClassVar[str] = "fit"
    RENAMED: ClassVar[dict[str, str]] = {"nb_epoch": "epochs"}
    SUPPLIED: ClassVar[dict[str, str]] = {
        "x": FED_BY_SERVICE,
        "y": FED_BY_SERVICE,
        "validation_data": "the service holds out the notebook's X_valid itself, the first "
        '"validation_size" (5000) training images; or give "validation_split"',
        "callbacks": 'write "early_stopping" or "reduce_lr_on_plateau" instead',
    }

    epochs: Annotated[Int, Field(ge=1, le=1000)] = 10
    batch_size: Annotated[Int, Field(ge=1, le=8192)] = 32
    validation_size: Annotated[Int, Field(ge=0, le=30_000)] = Field(
        default=DEFAULT_VALIDATION_SIZE,
        description="the first N training images are held out for validation, as in the notebook",
    )
    validation_split: Annotated[Float, Field(gt=0.0, lt=1.0)] | None = Field(
        default=None,
        description="Keras's fit(validation_split=...): the LAST fraction of the training images "
        "is held out instead (validation_size is then 0)",
    )
    train_size: Annotated[Int, Field(ge=1)] | None = Field(
        default=None,
        description="train on only the first N of the remaining images (quick runs); all if unset",
    )
    seed: Annotated[Int, Field(ge=0, le=2**31 - 1)] = Field(
        default=42, description="same spec + seed = same history"
    )
    early_stopping: EarlyStoppingSpec | None = None
    reduce_lr_on_plateau: ReduceLROnPlateauSpec | None = None
    layer_health: bool = Field(
        default=True,
        description="measure every layer's gradients, weights and activations after each epoch",
    )

    @model_validator(mode="before")
    @classmethod
    def _split_one_way(cls, data: Any) -> Any:
        if not (isinstance(data, dict) and data.get("validation_split") is not None):
            return data
        size = data.get("validation_size")
        if size is None:
            return {**data, "validation_size": 0}
        if size != 0:
            raise spec_error(
                "validation",
                f"give validation_size (the first N images, the notebook's way) or "
                f"validation_split (the last fraction, Keras's fit argument), not both; pick "
                f"one (validation_size={size!r}, validation_split={data['validation_split']!r})",
            )
        return data

    @property
    def fitted_images(self) -> int:
        """How many images `model.fit` is given (validation_split holds out the last of them)."""
        available = TRAIN_IMAGES - self.validation_size
        return available if self.train_size is None else min(self.train_size, available)

    @property
    def validates(self) -> bool:
        return self.validation_size > 0 or self.validation_split is not None

    @model_validator(mode="after")
    def _consistent_split(self) -> FitSpec:
        available = TRAIN_IMAGES - self.validation_size
        if self.train_size is not None and self.train_size > available:
            raise spec_error(
                "split",
                f"train_size {self.train_size} is more than the {available} training images "
                f"left after holding out validation_size={self.validation_size}",
            )
        if self.validation_split is not None:
            held_out = held_out_by_split(self.fitted_images, self.validation_split)
            if held_out == 0 or held_out == self.fitted_images:
                raise spec_error(
                    "split",
                    f"validation_split={self.validation_split} of {self.fitted_images} "
                    f"images holds out {held_out}; give a fraction that leaves images on "
                    "both sides",
                )
        for name in ("early_stopping", "reduce_lr_on_plateau"):
            callback = getattr(self, name)
            if callback is not None and callback.monitor.startswith("val_") and not self.validates:
                raise spec_error(
                    "split",
                    f"{name} monitors {callback.monitor!r} but validation_size is 0: hold out "
                    "validation images (validation_size or validation_split) or monitor "
                    "'loss' / 'accuracy'",
                )
        return self


def held_out_by_split(images: int, validation_split: float) -> int:
    """How many of `images` Keras's validation_split holds out (its own arithmetic)."""
    # keras.src.trainers.data_adapters.array_slicing.train_validation_split
    return images - math.floor(images * (1.0 - validation_split))
