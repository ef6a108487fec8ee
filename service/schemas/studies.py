"""Study and comparison bodies: the create request and the responses built from reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from service.domain import EXPERIMENT_ID_PATTERN, Status, StudyStatus
from service.schemas.openapi import NOT_NULL, exactly_one_of
from service.studies.leaderboard import LeaderboardRow, StudyReport
from service.studies.objective import DEFAULT_OBJECTIVE, ObjectiveMetric
from service.studies.presets import PresetName
from service.studies.pruning import Pruner
from service.studies.samplers import SamplerName
from service.studies.space import PATH_PATTERN, Dimension

SpecPath = Annotated[str, StringConstraints(pattern=PATH_PATTERN, max_length=200)]


def compared_ids_schema(at_least: int, at_most: int) -> dict[str, Any]:
    """The `ids` query parameter as the schema states it: `at_least` to `at_most` distinct
    experiment ids, the parameter repeated. The service also takes them comma-separated
    (ids=A,B), which OpenAPI cannot say beside the repeated form; it counts them the same."""
    return {
        "type": "array",
        "items": {"type": "string", "pattern": EXPERIMENT_ID_PATTERN.pattern},
        "minItems": at_least,
        "maxItems": at_most,
        "uniqueItems": True,
    }


class StudyCreate(BaseModel):
    """POST /studies: a preset, or a base spec and what to vary in it."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            # What `_coherent` checks: a preset alone, or a base with a space to vary; a
            # sampler other than grid with its number of trials.
            "oneOf": exactly_one_of(
                ("preset", "base"),
                with_each={
                    "preset": {
                        "properties": {"space": {"maxProperties": 0}, "sampler": {"const": "grid"}}
                    },
                    "base": {
                        "required": ["space"],
                        "properties": {
                            "base": {"$ref": "#/components/schemas/ExperimentCreate"},
                            "space": {"minProperties": 1},
                        },
                    },
                },
            ),
            "if": {"required": ["sampler"], "properties": {"sampler": {"not": {"const": "grid"}}}},
            "then": {"required": ["n_trials"], "properties": {"n_trials": NOT_NULL}},
        },
    )

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
    def _coherent(self) -> StudyCreate:
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


class LeaderboardRowPublic(BaseModel):
    experiment_id: str
    name: str
    label: str = Field(description="what was varied, in a few words")
    status: Status
    varied: dict[str, Any] = Field(description="what differs: path in the spec -> value")
    objective: float | None = Field(description="the best value of the study's objective")
    best_val_accuracy: float | None
    best_epoch: int | None = Field(description="the epoch of the best validation accuracy")
    test_accuracy: float | None
    epochs_to_threshold: int | None = Field(
        description="the first epoch whose validation accuracy reached the threshold; null if none"
    )
    seconds_per_epoch: float | None
    final_gap: float | None = Field(
        description="training minus validation accuracy at the last epoch (overfitting)"
    )
    epochs_done: int
    error: str | None = Field(description="why it failed, or why and when it was pruned")

    @classmethod
    def of(cls, row: LeaderboardRow) -> LeaderboardRowPublic:
        return cls.model_validate(row, from_attributes=True)


class StudyPublic(BaseModel):
    id: str
    name: str
    status: StudyStatus
    sampler: str
    objective: str
    n_trials: int = Field(description="trials the study runs in all")
    max_parallel: int
    pruner: dict[str, Any] | None
    created_at: datetime
    finished_at: datetime | None
    progress: dict[str, int] = Field(description="its trials so far, by status")
    owner: str | None = Field(default=None, description="who created it; null: nobody's")


class StudyDetailPublic(StudyPublic):
    definition: dict[str, Any] = Field(description="the base spec, search space and settings")
    threshold: float
    leaderboard: list[LeaderboardRowPublic] = Field(description="best objective first")


class StudiesPublic(BaseModel):
    data: list[StudyPublic]
    count: int
    limit: int
    offset: int


class HistorySeriesPublic(BaseModel):
    experiment_id: str
    loss: list[float | None]
    accuracy: list[float | None]
    val_loss: list[float | None]
    val_accuracy: list[float | None]


class RunLayersPublic(BaseModel):
    net: str = Field(
        description="the net in brief: `Flatten, Dense 300 LeakyReLU, Dense 10 softmax`"
    )
    changes: list[str] = Field(
        description="its layers against the first run's, aligned as a diff aligns lines: "
        "`+ BatchNormalization after Flatten, after each hidden Dense`, `- Dropout 0.2 after "
        "Flatten`, `hidden Dense: activation LeakyReLU -> relu` (empty for the first run)"
    )


class ComparisonPublic(BaseModel):
    ids: list[str]
    differences: dict[str, list[Any]] = Field(
        description="only the spec fields outside `layers` that differ: path -> each run's "
        "value, in ids order (the layers are compared in `layers`)"
    )
    layers: list[RunLayersPublic] = Field(
        description="each run's net and layer changes, in ids order"
    )
    runs: list[LeaderboardRowPublic] = Field(description="in ids order")
    threshold: float
    epochs: list[int]
    histories: list[HistorySeriesPublic] = Field(description="aligned on `epochs`, in ids order")


def study_public(report: StudyReport) -> StudyPublic:
    study = report.study
    definition = study.definition
    return StudyPublic(
        id=study.id,
        name=study.name,
        status=study.status,
        sampler=definition["sampler"],
        objective=definition["objective"],
        n_trials=definition["n_trials"],
        max_parallel=definition["max_parallel"],
        pruner=definition.get("pruner"),
        created_at=study.created_at,
        finished_at=study.finished_at,
        progress=report.progress,
        owner=study.owner,
    )


def study_detail_public(report: StudyReport, *, threshold: float) -> StudyDetailPublic:
    return StudyDetailPublic(
        **study_public(report).model_dump(),
        definition=report.study.definition,
        threshold=threshold,
        leaderboard=[LeaderboardRowPublic.of(row) for row in report.leaderboard],
    )
