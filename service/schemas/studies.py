"""Study and comparison bodies: the create request and the responses built from reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.domain import EXPERIMENT_ID_PATTERN, Status, StudyStatus
from service.schemas.openapi import NOT_NULL, exactly_one_of
from service.studies.leaderboard import LeaderboardRow, StudyReport
from service.studies.request import StudyRequest


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


class StudyCreate(StudyRequest):
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
        sampler=definition.sampler,
        objective=definition.objective,
        n_trials=definition.n_trials,
        max_parallel=definition.max_parallel,
        pruner=definition.pruner,
        created_at=study.created_at,
        finished_at=study.finished_at,
        progress=report.progress,
        owner=study.owner,
    )


def study_detail_public(report: StudyReport, *, threshold: float) -> StudyDetailPublic:
    return StudyDetailPublic(
        **study_public(report).model_dump(),
        definition=report.study.definition.as_json(),
        threshold=threshold,
        leaderboard=[LeaderboardRowPublic.of(row) for row in report.leaderboard],
    )
