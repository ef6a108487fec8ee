"""Keras optimizers as JSON, with Keras's defaults, gradient clipping and learning-rate
schedules; what Keras 3 renamed or removed is refused with what to write instead.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from service.spec.base import Bool, Float, SpecModel
from service.spec.schedules import LearningRateOrSchedule
from service.spec.suggestions import known_type, spec_error

Beta = Annotated[Float, Field(ge=0.0, lt=1.0)]
Epsilon = Annotated[Float, Field(gt=0.0, le=1.0)]
Momentum = Annotated[Float, Field(ge=0.0, lt=1.0)]
Clip = Annotated[Float, Field(gt=0.0, le=1e6)]
CLIPPING = ("clipnorm", "clipvalue", "global_clipnorm")


class _Optimizer(SpecModel):
    RENAMED: ClassVar[dict[str, str]] = {"lr": "learning_rate"}
    REMOVED: ClassVar[dict[str, str]] = {
        "decay": 'give a schedule as the learning_rate instead: Keras 2\'s decay=d is {"type": '
        '"InverseTimeDecay", "initial_learning_rate": <learning rate>, "decay_steps": 1, '
        '"decay_rate": d}',
        "schedule_decay": "Nadam's momentum schedule is built in now; leave it out",
    }

    learning_rate: LearningRateOrSchedule
    clipnorm: Clip | None = Field(default=None, description="clip each gradient's norm")
    clipvalue: Clip | None = Field(default=None, description="clip each gradient value")
    global_clipnorm: Clip | None = Field(default=None, description="clip all gradients' norm")

    @model_validator(mode="after")
    def _one_clipping(self) -> _Optimizer:
        given = [name for name in CLIPPING if getattr(self, name) is not None]
        if len(given) > 1:
            raise spec_error(
                "clipping",
                f"{self._what()}: give one of clipnorm, clipvalue and global_clipnorm, not "
                f"{' and '.join(given)} (Keras refuses more than one)",
            )
        return self


class SGD(_Optimizer):
    type: Literal["SGD"]
    learning_rate: LearningRateOrSchedule = 0.01
    momentum: Momentum = 0.0
    nesterov: Bool = False


class Adagrad(_Optimizer):
    type: Literal["Adagrad"]
    learning_rate: LearningRateOrSchedule = 0.001
    # Unbounded above, so refuse Infinity: JSON stores it as null, and the spec would not reload.
    initial_accumulator_value: Annotated[Float, Field(ge=0.0, allow_inf_nan=False)] = 0.1
    epsilon: Epsilon = 1e-7


class RMSprop(_Optimizer):
    type: Literal["RMSprop"]
    learning_rate: LearningRateOrSchedule = 0.001
    rho: Beta = 0.9
    momentum: Momentum = 0.0
    epsilon: Epsilon = 1e-7
    centered: Bool = False


class _AdamFamily(_Optimizer):
    learning_rate: LearningRateOrSchedule = 0.001
    beta_1: Beta = 0.9
    beta_2: Beta = 0.999
    epsilon: Epsilon = 1e-7


class Adam(_AdamFamily):
    type: Literal["Adam"]
    amsgrad: Bool = False


class Adamax(_AdamFamily):
    type: Literal["Adamax"]


class Nadam(_AdamFamily):
    type: Literal["Nadam"]


_OptimizerClasses = SGD | Adagrad | RMSprop | Adam | Adamax | Nadam
Optimizer = Annotated[
    _OptimizerClasses, Field(discriminator="type"), known_type(_OptimizerClasses, what="optimizer")
]
OPTIMIZER_TYPES = ("SGD", "Adagrad", "RMSprop", "Adam", "Adamax", "Nadam")
