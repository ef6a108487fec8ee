"""Experiments: their status, epochs, attempts, the drafts asked for and the claims workers
hold, the change log of them, and how a rerun compares with its original."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from service.spec.experiment import ExperimentSpec


def utcnow() -> datetime:
    """Now, timezone-aware in UTC: what every stored time is stamped with."""
    return datetime.now(UTC)


class Status(enum.StrEnum):
    """Where an experiment is in its life."""

    QUEUED = "queued"
    """Accepted and waiting for a worker slot (also after a lost worker, while attempts remain)."""
    RUNNING = "running"
    """A worker holds its lease and is training it."""
    SUCCEEDED = "succeeded"
    """Trained, evaluated on the test set, and its model saved for serving."""
    FAILED = "failed"
    """Stopped for good; `error` says why and what to change."""
    CANCELLED = "cancelled"
    """Stopped on a user's request; finished epochs are kept."""
    PRUNED = "pruned"
    """A study's trial stopped early by its pruner; `error` says why and at which epoch."""

    @property
    def is_finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.PRUNED})


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    loss: float
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    attempt: int = 0
    learning_rate: float | None = None
    """The optimizer's rate at the epoch's end (None in histories from before it was kept)."""


@dataclass(frozen=True)
class Attempt:
    number: int
    worker: str | None
    start_epoch: int
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None


@dataclass(frozen=True)
class Experiment:
    id: str
    name: str
    description: str | None
    spec: dict[str, Any]
    summary: dict[str, Any] | None
    status: Status
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    test_loss: float | None
    test_accuracy: float | None
    error: str | None
    attempt: int
    max_attempts: int
    cancel_requested: bool
    model_uri: str | None
    worker: str | None
    versions: dict[str, str] = field(default_factory=dict)
    spec_hash: str | None = None
    seed: int | None = None
    rerun_of: str | None = None
    epochs_done: int = 0
    aliases: tuple[str, ...] = ()
    study_id: str | None = None
    trial_params: dict[str, Any] | None = None
    """For a study's trial: what was varied, by path in the spec."""
    tags: tuple[str, ...] = ()
    owner_id: str | None = None
    owner: str | None = None
    """The owner's name; None for work made before the class or with API_TOKEN."""
    client_id: str = ""


MAX_TAGS = 10
"""Tags one experiment may carry."""
MAX_TAG_LENGTH = 40


@dataclass(frozen=True)
class ExperimentDraft:
    """An experiment someone asks for, before it is stored: the spec that is trained, and what
    describes the run beside it (routes build it from a request body; reruns from a stored one)."""

    name: str
    description: str | None
    spec: ExperimentSpec
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobTiming:
    """A finished training's whole time, from its claim to its end, and the parts of it."""

    seconds: float
    epoch_seconds: float
    """The sum of its epochs' times; the rest was building, evaluating and saving."""
    after_last_epoch: float
    """From its last epoch's record to its end: the test-set evaluation and the save."""


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one attempt of an experiment; `attempt` fences every write."""

    experiment_id: str
    attempt: int
    worker: str
    spec: dict[str, Any]
    start_epoch: int
    owner: str | None = None
    """Whose job it is, by name (None: nobody's)."""


@dataclass(frozen=True)
class Change:
    """One entry of the change log: `status` (created, status or cancel flag changed),
    `epoch` (an epoch recorded) or `deleted`; `id` orders the log across every process."""

    id: int
    experiment_id: str
    kind: str
    data: dict[str, Any]

    @property
    def ends_experiment(self) -> bool:
        return self.kind == "deleted" or (
            self.kind == "status" and self.data.get("status") in FINISHED
        )

    @property
    def deletes_experiment(self) -> bool:
        return self.kind == "deleted"

    @property
    def may_move_models(self) -> bool:
        """A model succeeded or was deleted: `best`, `latest` or an alias may name another."""
        return self.deletes_experiment or (
            self.kind == "status" and self.data.get("status") == Status.SUCCEEDED
        )


# Reproduction: how a rerun's history compares with its original's.
@dataclass(frozen=True)
class FirstDifference:
    """The first epoch and metric where two histories part; `metric` is "missing" when the
    epoch is in one history only."""

    epoch: int
    metric: str
    original: float | None
    rerun: float | None


@dataclass(frozen=True)
class Reproduction:
    """Whether a rerun reproduced its original's history; None while they cannot be compared."""

    reproduced: bool | None
    explanation: str
    first_difference: FirstDifference | None = None
    versions_differ: bool | None = None
    original_versions: dict[str, str] = field(default_factory=dict)
