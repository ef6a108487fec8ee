"""Experiment bodies: the create request and the responses (`*Public`) built from domain objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from service.domain import Attempt, EpochRecord, Experiment, Status
from service.spec.experiment import ExperimentSpec


class ExperimentCreate(ExperimentSpec):
    """POST /experiments: the spec plus what a person calls it."""

    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    description: str | None = Field(default=None, max_length=2000)


class LayerSummary(BaseModel):
    name: str
    type: str
    output_shape: list[int | None]
    params: int


class SummaryPublic(BaseModel):
    """What `model.summary()` prints, computed by really building the Keras model."""

    layers: list[LayerSummary]
    total_params: int
    trainable_params: int
    non_trainable_params: int


class ExperimentValidated(BaseModel):
    """POST /experiments/validate: the spec as it would be trained, and its summary."""

    spec: ExperimentSpec = Field(description="the spec with every Keras default filled in")
    summary: SummaryPublic


class AttemptPublic(BaseModel):
    number: int
    worker: str | None
    start_epoch: int = Field(description="epochs already done when this attempt started")
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptPublic:
        return cls.model_validate(attempt, from_attributes=True)


class ExperimentPublic(BaseModel):
    id: str
    name: str
    description: str | None
    status: Status
    spec: ExperimentSpec
    summary: SummaryPublic | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    test_loss: float | None
    test_accuracy: float | None
    error: str | None
    epochs_done: int
    attempt: int
    max_attempts: int
    cancel_requested: bool
    worker: str | None
    versions: dict[str, str] = Field(description="software that trained it (tensorflow, keras)")
    model_available: bool
    aliases: list[str]
    attempts: list[AttemptPublic] | None = None

    @classmethod
    def of(cls, experiment: Experiment, attempts: list[Attempt] | None = None) -> ExperimentPublic:
        return cls(
            id=experiment.id,
            name=experiment.name,
            description=experiment.description,
            status=experiment.status,
            spec=ExperimentSpec.model_validate(experiment.spec),
            summary=SummaryPublic.model_validate(experiment.summary)
            if experiment.summary
            else None,
            created_at=experiment.created_at,
            started_at=experiment.started_at,
            finished_at=experiment.finished_at,
            test_loss=experiment.test_loss,
            test_accuracy=experiment.test_accuracy,
            error=experiment.error,
            epochs_done=experiment.epochs_done,
            attempt=experiment.attempt,
            max_attempts=experiment.max_attempts,
            cancel_requested=experiment.cancel_requested,
            worker=experiment.worker,
            versions=experiment.versions,
            model_available=experiment.status is Status.SUCCEEDED and bool(experiment.model_uri),
            aliases=list(experiment.aliases),
            attempts=[AttemptPublic.of(a) for a in attempts] if attempts is not None else None,
        )


class ExperimentsPublic(BaseModel):
    data: list[ExperimentPublic]
    count: int = Field(description="experiments matching the filter, over all pages")
    limit: int
    offset: int


class EpochPublic(BaseModel):
    epoch: int
    loss: float | None
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float

    @classmethod
    def of(cls, record: EpochRecord) -> EpochPublic:
        loss = record.loss if record.loss == record.loss else None  # NaN is not JSON
        return cls(
            epoch=record.epoch,
            loss=loss,
            accuracy=record.accuracy,
            val_loss=record.val_loss,
            val_accuracy=record.val_accuracy,
            seconds=record.seconds,
        )


class HistoryPublic(BaseModel):
    experiment_id: str
    status: Status
    epochs: list[EpochPublic]


class HealthPublic(BaseModel):
    status: str = Field(description="ok, or degraded when a dependency is unavailable")
    database: str
    queue: str
    data: str
    version: str
    checks: dict[str, Any] = Field(default_factory=dict)
