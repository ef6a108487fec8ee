"""What a study is asked to do, validated where it is parsed: a preset, or a base spec and
what to vary in it (POST /studies takes it as its body, `StudyCreate`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from service.domain import ObjectiveMetric
from service.studies.objective import DEFAULT_OBJECTIVE
from service.studies.presets import PresetName
from service.studies.pruning import Pruner
from service.studies.samplers import SamplerName
from service.studies.space import PATH_PATTERN, Dimension

SpecPath = Annotated[str, StringConstraints(pattern=PATH_PATTERN, max_length=200)]


class StudyRequest(BaseModel):
    """A preset, or a base spec and what to vary in it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1, max_length=160, pattern=r"\S")
    preset: PresetName | None = Field(
        default=None, description="optimizers, batchnorm or dropout: the notebook's questions"
    )
    base: dict[str, Any] | None = Field(
        default=None, description="the spec every trial starts from: layers, compile, fit"
    )
    sampler: SamplerName = Field(default="grid", description="grid, random or tpe")
    space: dict[SpecPath, Dimension] = Field(
        default_factory=dict,
        max_length=20,
        description="path in the spec -> a list of values (grid axis or choice) or a "
        "distribution: uniform, log_uniform, int, choice",
        json_schema_extra={"propertyNames": {"pattern": PATH_PATTERN, "maxLength": 200}},
    )
    n_trials: int | None = Field(default=None, ge=1, description="trials of a random or tpe study")
    max_parallel: int = Field(
        default=1, ge=1, le=64, description="trials queued or running at once"
    )
    objective: ObjectiveMetric = Field(
        default=DEFAULT_OBJECTIVE, description="ranked by its best value over the epochs"
    )
    pruner: Pruner | None = None
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="of the sampler's draws")
    epochs: int | None = Field(default=None, ge=1, description="overrides fit.epochs")
    train_size: int | None = Field(default=None, ge=1, description="overrides fit.train_size")

    @model_validator(mode="after")
    def _coherent(self) -> StudyRequest:
        if (self.preset is None) == (self.base is None):
            raise ValueError('give either "preset" or "base" (a spec to vary), not both')
        if self.preset is not None and self.space:
            raise ValueError(f'the {self.preset} preset has its own search space; drop "space"')
        if self.preset is not None and self.sampler != "grid":
            raise ValueError("a preset runs every one of its variants: its sampler is grid")
        if self.base is not None and not self.space:
            raise ValueError(
                'give "space": at least one path to vary, e.g. {"fit.batch_size": [32, 64]}'
            )
        if self.sampler != "grid" and self.n_trials is None:
            raise ValueError(f'a {self.sampler} study needs "n_trials"')
        return self
