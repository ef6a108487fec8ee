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


# The names `keras.regularizers.get` and `keras.constraints.get` take (each class's name and its
# snake_case), to the type the spec writes; tests/ml/test_build.py asks the installed Keras.
# "l1_l2" is the spec's type (Keras's function `l1_l2`), but not a name Keras's `get` knows.
KERAS_REGULARIZER_NAMES = {
    "l1": "l1",
    "L1": "l1",
    "l2": "l2",
    "L2": "l2",
    "l1l2": "l1_l2",
    "L1L2": "l1_l2",
}
KERAS_CONSTRAINT_NAMES = {
    "max_norm": "max_norm",
    "MaxNorm": "max_norm",
    "non_neg": "non_neg",
    "NonNeg": "non_neg",
    "unit_norm": "unit_norm",
    "UnitNorm": "unit_norm",
}

_RegularizerClasses = L1 | L2 | L1L2
Regularizer = Annotated[
    _RegularizerClasses,
    Field(discriminator="type"),
    known_type(_RegularizerClasses, what="regularizer", keras_names=KERAS_REGULARIZER_NAMES),
]
_ConstraintClasses = MaxNorm | NonNeg | UnitNorm
Constraint = Annotated[
    _ConstraintClasses,
    Field(discriminator="type"),
    known_type(_ConstraintClasses, what="constraint", keras_names=KERAS_CONSTRAINT_NAMES),
]
