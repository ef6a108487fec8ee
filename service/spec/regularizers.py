"""Weight penalties and constraints on a kernel, as Keras names them (`kernel_regularizer`,
`kernel_constraint`), each an object with a `type` and Keras's defaults.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from service.spec.base import Float, Int, SpecModel
from service.spec.suggestions import known_type

# A penalty factor above this swamps any loss; it is a typo, not an experiment.
Factor = Annotated[Float, Field(ge=0.0, le=100.0)]


class L1(SpecModel):
    type: Literal["l1"]
    l1: Factor = 0.01


class L2(SpecModel):
    type: Literal["l2"]
    l2: Factor = 0.01


class L1L2(SpecModel):
    type: Literal["l1_l2"]
    l1: Factor = 0.0
    l2: Factor = 0.0


Axis = Annotated[Int, Field(ge=-4, le=3)]
# Keras's default axis 0 suits a Dense kernel; a Conv2D kernel's per-filter axes are [0, 1, 2].
Axes = Axis | Annotated[list[Axis], Field(min_length=1, max_length=4)]


class MaxNorm(SpecModel):
    type: Literal["max_norm"]
    max_value: Annotated[Float, Field(gt=0.0, le=1e6)] = 2.0
    axis: Axes = 0


class NonNeg(SpecModel):
    type: Literal["non_neg"]


class UnitNorm(SpecModel):
    type: Literal["unit_norm"]
    axis: Axes = 0


_RegularizerClasses = L1 | L2 | L1L2
Regularizer = Annotated[
    _RegularizerClasses,
    Field(discriminator="type"),
    known_type(_RegularizerClasses, what="regularizer"),
]
_ConstraintClasses = MaxNorm | NonNeg | UnitNorm
Constraint = Annotated[
    _ConstraintClasses,
    Field(discriminator="type"),
    known_type(_ConstraintClasses, what="constraint"),
]
