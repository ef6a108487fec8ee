"""Search spaces: where in a spec a value goes (`layers[1].units`), and what it may be.

A path names a place in the JSON spec a client posts: dotted keys and list indexes, e.g.
`compile.optimizer`, `compile.optimizer.learning_rate`, `layers[1].units`, `fit.batch_size`.
A dimension is a list of values (a grid axis, or a choice) or a distribution to draw from.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*)*$"
_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


class SpaceError(ValueError):
    """A path does not lead into the spec, or a dimension cannot be drawn from."""


class _Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Uniform(_Dimension):
    type: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if not self.low < self.high:
            raise PydanticCustomError("range", "low must be below high")
        return self


class LogUniform(Uniform):
    type: Literal["log_uniform"]  # type: ignore[assignment]
    # In the schema too, so a client generated from it never sends a log range through 0.
    low: float = Field(gt=0, description="above 0: a log scale has no 0")


class IntRange(_Dimension):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(default=1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if not self.low <= self.high:
            raise PydanticCustomError("range", "low must not be above high")
        if self.log and (self.low < 1 or self.step != 1):
            raise PydanticCustomError("range", "a log int range needs low >= 1 and step 1")
        return self

    @property
    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))


class Choice(_Dimension):
    type: Literal["choice"]
    values: list[Any] = Field(min_length=1, max_length=100)


Distribution = Annotated[Uniform | LogUniform | IntRange | Choice, Field(discriminator="type")]
Dimension = Annotated[
    Annotated[list[Any], Tag("values")] | Annotated[Distribution, Tag("distribution")],
    # One branch by the value's kind, so a bad distribution is refused in its own words only.
    Discriminator(lambda value: "values" if isinstance(value, list) else "distribution"),
]
"""A bare list is a grid axis (grid) or a choice (random, tpe)."""
Space = dict[str, Dimension]
Params = dict[str, Any]


def as_distribution(dimension: Dimension) -> Distribution:
    if isinstance(dimension, list):
        return Choice(type="choice", values=dimension)
    return dimension


def grid_values(path: str, dimension: Dimension) -> list[Any]:
    """The values a grid axis takes; a continuous distribution has none to enumerate."""
    if isinstance(dimension, list):
        return dimension
    if isinstance(dimension, Choice):
        return dimension.values
    if isinstance(dimension, IntRange):
        return dimension.values
    raise SpaceError(
        f"{path}: a grid takes a list of values (or a choice or an int range), not a "
        f"{dimension.type} distribution; use the random or tpe sampler for that"
    )


def grid_size(space: Space) -> int:
    return math.prod(len(grid_values(path, dim)) for path, dim in space.items())


def grid(space: Space) -> list[Params]:
    """Every combination, the last path varying fastest."""
    paths = list(space)
    axes = [grid_values(path, space[path]) for path in paths]
    return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*axes)]


def corners(space: Space) -> list[Params]:
    """Every combination of each dimension's extremes (or choices): what any draw lies between.

    Validating these checks the limits any drawn trial can meet, before a sampler that picks
    its trials later (tpe) has picked them.
    """
    axes: list[list[Any]] = []
    for dimension in space.values():
        distribution = as_distribution(dimension)
        if isinstance(distribution, Choice):
            axes.append(distribution.values)
        else:
            axes.append([distribution.low, distribution.high])
    return [dict(zip(space, combo, strict=True)) for combo in itertools.product(*axes)]


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for key, index in _STEP.findall(path):
        steps.append(key if key else int(index))
    return steps


def apply(spec: dict[str, Any], params: Params) -> dict[str, Any]:
    """A copy of `spec` with each path set to its value; a missing last key is added."""
    result = copy.deepcopy(spec)
    for path, value in params.items():
        steps = _steps(path)
        node: Any = result
        for depth, step in enumerate(steps):
            last = depth == len(steps) - 1
            where = _where(steps[: depth + 1])
            if isinstance(step, int):
                if not isinstance(node, list) or not -len(node) <= step < len(node):
                    raise SpaceError(f"{path}: the spec has no {where}")
            elif not isinstance(node, dict) or (not last and step not in node):
                raise SpaceError(f"{path}: the spec has no {where}")
            if last:
                node[step] = copy.deepcopy(value)
            else:
                node = node[step]
    return result


def _where(steps: list[str | int]) -> str:
    text = ""
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def describe_value(value: Any) -> str:
    """A short Keras-like rendering: `SGD(learning_rate=0.001, momentum=0.9)`, `64`."""
    if isinstance(value, dict) and "type" in value:
        arguments = ", ".join(f"{k}={v!r}" for k, v in value.items() if k != "type")
        return f"{value['type']}({arguments})"
    if isinstance(value, list) and all(isinstance(v, dict) and "type" in v for v in value):
        return "[" + ", ".join(str(v["type"]) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if not isinstance(value, str) else value


def describe(params: Params) -> str:
    """`learning_rate=0.001, units=300`: each path by its last name, with its value."""
    return ", ".join(
        f"{_steps(path)[-1] if isinstance(_steps(path)[-1], str) else path}={describe_value(value)}"
        for path, value in params.items()
    )
