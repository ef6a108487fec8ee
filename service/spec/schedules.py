"""Learning-rate schedules (`keras.optimizers.schedules`), given as an optimizer's
`learning_rate`: the rate then changes with every training step, as in Keras.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from service.spec.base import Bool, Float, Int, SpecModel
from service.spec.suggestions import known_type, spec_error

LearningRate = Annotated[Float, Field(gt=0.0, le=10.0)]
Steps = Annotated[Int, Field(ge=1, le=10_000_000)]
DecayRate = Annotated[Float, Field(gt=0.0, le=1.0)]


class ExponentialDecay(SpecModel):
    """initial_learning_rate * decay_rate ** (step / decay_steps)."""

    type: Literal["ExponentialDecay"]
    initial_learning_rate: LearningRate
    decay_steps: Steps
    decay_rate: DecayRate
    staircase: Bool = False


class InverseTimeDecay(SpecModel):
    """initial_learning_rate / (1 + decay_rate * step / decay_steps): Keras 2's `decay`."""

    type: Literal["InverseTimeDecay"]
    initial_learning_rate: LearningRate
    decay_steps: Steps
    decay_rate: Annotated[Float, Field(gt=0.0, le=1000.0)]
    staircase: Bool = False


class CosineDecay(SpecModel):
    type: Literal["CosineDecay"]
    initial_learning_rate: LearningRate
    decay_steps: Steps
    alpha: Annotated[Float, Field(ge=0.0, le=1.0)] = 0.0
    warmup_target: LearningRate | None = None
    warmup_steps: Annotated[Int, Field(ge=0, le=10_000_000)] = 0


class PiecewiseConstantDecay(SpecModel):
    """values[i] until step boundaries[i], then the next value; the last one for ever after."""

    type: Literal["PiecewiseConstantDecay"]
    boundaries: list[Annotated[Int, Field(ge=0, le=100_000_000)]] = Field(min_length=1)
    values: list[LearningRate] = Field(min_length=2)

    @model_validator(mode="after")
    def _one_more_value_than_boundaries(self) -> PiecewiseConstantDecay:
        if len(self.values) != len(self.boundaries) + 1:
            raise spec_error(
                "schedule",
                f"PiecewiseConstantDecay needs one more value than boundaries (a rate before "
                f"the first boundary, and one after each): {len(self.boundaries)} boundaries "
                f"take {len(self.boundaries) + 1} values, not {len(self.values)}",
            )
        if any(a >= b for a, b in zip(self.boundaries, self.boundaries[1:], strict=False)):
            raise spec_error("schedule", "boundaries must increase, e.g. [1000, 2000]")
        return self


_ScheduleClasses = ExponentialDecay | PiecewiseConstantDecay | InverseTimeDecay | CosineDecay
Schedule = Annotated[
    _ScheduleClasses,
    Field(discriminator="type"),
    known_type(_ScheduleClasses, what="learning-rate schedule", by_name=False),
]

SCHEDULE_TYPES = ("ExponentialDecay", "PiecewiseConstantDecay", "InverseTimeDecay", "CosineDecay")


def _rate_or_schedule(value: object) -> str:
    # A dict when validating JSON, a schedule model when serialising one.
    return "schedule" if isinstance(value, dict | SpecModel) else "rate"


# A number, or a schedule object: told apart by the JSON's kind, so that a bad schedule is
# reported as a schedule only (not also as "not a number").
LearningRateOrSchedule = Annotated[
    Annotated[LearningRate, Tag("rate")] | Annotated[Schedule, Tag("schedule")],
    Discriminator(_rate_or_schedule),
]
