"""Plain domain objects shared by the API, the queue and the workers (never ORM rows)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from service.mnist import Scale
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


# How a request names the model that answers it.
BEST = "best"
"""The succeeded experiment with the highest test accuracy."""
LATEST = "latest"
"""The most recently finished succeeded experiment."""
RESERVED = frozenset({BEST, LATEST})
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
EXPERIMENT_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
REFERENCE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ALIAS_RULE = "1-64 lowercase letters, digits, '-' or '_', starting with a letter"


def reference_problem(reference: str) -> str | None:
    """Why `reference` cannot name a model (best, latest, an alias or an id), or None."""
    if REFERENCE_PATTERN.fullmatch(reference):
        return None
    lowered = reference.strip().lower()
    hint = f"did you mean {lowered!r}? " if REFERENCE_PATTERN.fullmatch(lowered) else ""
    return (
        f"{reference!r} names no model; {hint}use 'best', 'latest', an alias "
        f"({_ALIAS_RULE}) or an experiment id"
    )


def alias_problem(name: str) -> str | None:
    """Why `name` cannot be an alias, or None when it can: the rules the API and the database share.

    An alias must not shadow a model reference that already means something else.
    """
    # fullmatch: `$` alone would let a trailing newline through.
    if not ALIAS_PATTERN.fullmatch(name):
        lowered = name.strip().lower()
        hint = f"; did you mean {lowered!r}?" if ALIAS_PATTERN.fullmatch(lowered) else ""
        return f"{name!r} is not a valid alias: use {_ALIAS_RULE}{hint}"
    if name in RESERVED:
        return (
            f"{name!r} is reserved ('best' is the most accurate model, 'latest' the most "
            "recently finished); choose another alias"
        )
    if EXPERIMENT_ID_PATTERN.fullmatch(name):
        return (
            f"{name!r} looks like an experiment id (32 hex digits); an alias needs a name that "
            "cannot be mistaken for one"
        )
    return None


@dataclass(frozen=True)
class ServableModel:
    """A succeeded experiment whose saved model can answer predictions."""

    experiment_id: str
    name: str
    test_accuracy: float | None
    test_loss: float | None
    finished_at: datetime | None
    model_uri: str
    aliases: tuple[str, ...] = ()

    def is_version(self, version: str | None) -> bool:
        """Whether a request for `version` (None: any) may be answered by this model: a
        model's one version is the experiment id its name resolved to."""
        return version is None or version == self.experiment_id


@dataclass(frozen=True)
class ImagesToPredict:
    """What a prediction request asks, as the domain takes it: the model it names, its images
    in order (pixel lists or base64-encoded files, each beside the request field that gave it,
    for the messages) and the scale to assume for pixel lists."""

    model: str
    pixels: tuple[tuple[str, Any], ...] = ()
    encoded: tuple[tuple[str, str], ...] = ()
    scale: Scale = "auto"

    @property
    def count(self) -> int:
        return len(self.pixels) + len(self.encoded)


@dataclass(frozen=True)
class Alias:
    alias: str
    experiment_id: str
    updated_at: datetime
    owner: str | None = None


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


class StudyStatus(enum.StrEnum):
    """Where a study is in its life; its trials carry their own Status."""

    RUNNING = "running"
    """Creating trials as earlier ones finish, up to its max_parallel at a time."""
    FINISHED = "finished"
    """Every trial it will ever have has ended."""
    CANCELLED = "cancelled"
    """Stopped on a user's request: no new trials; its queued and running ones were cancelled."""


ObjectiveMetric = Literal["val_accuracy", "val_loss", "accuracy", "loss"]
"""The per-epoch metric a study ranks its trials by (`service.studies.objective`)."""


@dataclass(frozen=True)
class StudyDefinition:
    """What a study was asked for, validated and resolved at creation; stored as JSON (its
    `as_json` is what GET /studies/{id} shows as `definition`)."""

    base: dict[str, Any]
    """The spec every trial starts from (overrides such as `epochs` applied)."""
    space: dict[str, Any]
    """Path in the spec -> its dimension, as JSON."""
    sampler: str
    objective: ObjectiveMetric
    n_trials: int
    max_parallel: int
    seed: int
    max_attempts: int
    preset: str | None = None
    pruner: dict[str, Any] | None = None
    """As JSON; `service.studies.pruning.Pruner` reads it (Optuna only where it prunes)."""

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> StudyDefinition:
        return cls(
            base=stored["base"],
            space=stored["space"],
            sampler=stored["sampler"],
            objective=stored["objective"],
            n_trials=stored["n_trials"],
            max_parallel=stored["max_parallel"],
            seed=stored["seed"],
            max_attempts=stored["max_attempts"],
            preset=stored.get("preset"),
            pruner=stored.get("pruner"),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "sampler": self.sampler,
            "n_trials": self.n_trials,
            "max_parallel": self.max_parallel,
            "objective": self.objective,
            "pruner": self.pruner,
            "seed": self.seed,
            "base": self.base,
            "space": self.space,
            "max_attempts": self.max_attempts,
        }


@dataclass(frozen=True)
class PlannedTrial:
    """A trial drawn up front (grid, random, a preset): what it varies, in a few words, and
    its summary from the Keras dry run at creation."""

    params: dict[str, Any]
    label: str
    summary: dict[str, Any] | None

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> PlannedTrial:
        return cls(params=stored["params"], label=stored["label"], summary=stored["summary"])

    def as_json(self) -> dict[str, Any]:
        return {"params": self.params, "label": self.label, "summary": self.summary}


@dataclass(frozen=True)
class Study:
    """A sweep over a base spec; `plan` its trials when they were all drawn up front (grid,
    random, presets)."""

    id: str
    name: str
    client_id: str
    definition: StudyDefinition
    plan: tuple[PlannedTrial, ...] | None
    status: StudyStatus
    created_at: datetime
    finished_at: datetime | None
    owner_id: str | None = None
    owner: str | None = None


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


# People of a class.
class Role(enum.StrEnum):
    STUDENT = "student"
    """Reads everyone's work (unless CLASS_READS=own), changes only their own."""
    TEACHER = "teacher"
    """Changes everything, adds and removes people."""


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None


PERSON_CLIENT_PREFIX = "person:"


def person_client_id(person_id: str) -> str:
    """What a person's work counts against (queue caps, fair share): them, whatever their
    address or token."""
    return PERSON_CLIENT_PREFIX + person_id


def owner_of(client_id: str) -> str | None:
    """The person who owns work submitted as `client_id`; None for anonymous or API_TOKEN work."""
    if client_id.startswith(PERSON_CLIENT_PREFIX):
        return client_id.removeprefix(PERSON_CLIENT_PREFIX)
    return None


@dataclass(frozen=True)
class Caller:
    """Who a request is: a person of the class, the API_TOKEN holder, or anyone at all."""

    client_id: str
    """What their submissions count against."""
    person: Person | None = None
    teacher: bool = False
    """May change everything: the API_TOKEN holder, a teacher, or anyone while the service is
    open (no API_TOKEN, nobody added)."""
    signed_in: bool = False
    """Sent a token that opened something (API_TOKEN or a person's)."""

    @property
    def owner_id(self) -> str | None:
        return self.person.id if self.person else None

    @property
    def name(self) -> str | None:
        return self.person.name if self.person else None

    @property
    def label(self) -> str:
        """How the log names them."""
        if self.person is not None:
            return self.person.name
        return "the teacher" if self.signed_in else f"client {self.client_id}"

    def may_change(self, owner_id: str | None) -> bool:
        return self.teacher or (owner_id is not None and owner_id == self.owner_id)


@dataclass(frozen=True)
class PersonActivity:
    """A person and where their work stands: the teacher's row for them."""

    person: Person
    queued: int
    running: int
    done: int
    best_accuracy: float | None = None
    best_experiment_id: str | None = None
    training_seconds_today: float = 0.0
    last_active: datetime | None = None


@dataclass(frozen=True)
class Rules:
    max_params: int | None = None
    max_epochs: int | None = None
    max_train_seconds: float | None = None
    """Enforced while training: the entry is stopped and failed when it trains longer."""
    train_size: int | None = None
    """Every entry trains on exactly this many images: the same data for everyone."""
    allowed_layers: tuple[str, ...] = field(default=())
    """Keras layer types an entry may use; empty allows all."""
    allowed_optimizers: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "max_params": self.max_params,
            "max_epochs": self.max_epochs,
            "max_train_seconds": self.max_train_seconds,
            "train_size": self.train_size,
            "allowed_layers": list(self.allowed_layers),
            "allowed_optimizers": list(self.allowed_optimizers),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Rules:
        return cls(
            max_params=body.get("max_params"),
            max_epochs=body.get("max_epochs"),
            max_train_seconds=body.get("max_train_seconds"),
            train_size=body.get("train_size"),
            allowed_layers=tuple(body.get("allowed_layers") or ()),
            allowed_optimizers=tuple(body.get("allowed_optimizers") or ()),
        )


@dataclass(frozen=True)
class Challenge:
    """A class challenge. Its split seed stays in the database: nothing outside scoring needs it."""

    id: str
    name: str
    description: str | None
    rules: Rules
    max_entries_per_person: int | None
    closes_at: datetime | None
    closed_at: datetime | None
    created_at: datetime

    def is_open(self, now: datetime) -> bool:
        return self.closed_at is None and (self.closes_at is None or now < self.closes_at)


@dataclass(frozen=True)
class ChallengeEntry:
    """An experiment entered into a challenge, with what its leaderboard row shows."""

    experiment_id: str
    challenge_id: str
    entrant: str
    entrant_name: str
    created_at: datetime
    status: Status
    params: int | None
    epochs: int
    public_score: float | None
    private_score: float | None
