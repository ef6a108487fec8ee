"""ORM models; the schema itself is created and changed only by Alembic migrations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    func,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

from service.domain import Status, owner_of, utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: UTCDateTime}


# The software a training ran with (`service.ml.train.versions()`), each in its own column.
VERSION_COLUMNS = {
    "python": "python_version",
    "tensorflow": "tf_version",
    "keras": "keras_version",
    "numpy": "numpy_version",
    "kernels": "kernels",
}


class PersonRow(Base):
    """A student or a teacher of the class; `token_hash` is the sha256 of their token (NULL once
    revoked: their work stays, their token opens nothing)."""

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ux_people_name", "name", unique=True),
        Index("ux_people_token_hash", "token_hash", unique=True),
    )


def _owner_column() -> Mapped[str | None]:
    return mapped_column(String(32), ForeignKey("people.id"), index=True)


def _owner_name(owner_id: Mapped[str | None]) -> Mapped[str | None]:
    """The owner's name, loaded with the row (NULL: nobody's, or the API_TOKEN holder's)."""
    return column_property(select(PersonRow.name).where(PersonRow.id == owner_id).scalar_subquery())


class ExperimentRow(Base):
    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    spec: Mapped[dict[str, Any]]
    summary: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str] = mapped_column(String(200), default="anonymous")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    test_loss: Mapped[float | None] = mapped_column(Float)
    test_accuracy: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    # Fencing token: every claim increments it and every worker write names it.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The model's key in the store (`experiments/<id>/model.keras`), never an absolute URI, so
    # a store moved to another MODELS_URL keeps serving (0008 turned older URIs into keys).
    model_uri: Mapped[str | None] = mapped_column(String(1000))
    tf_version: Mapped[str | None] = mapped_column(String(40))
    keras_version: Mapped[str | None] = mapped_column(String(40))
    python_version: Mapped[str | None] = mapped_column(String(40))
    numpy_version: Mapped[str | None] = mapped_column(String(40))
    # TensorFlow's or XLA's (TRAINING_PATH): their arithmetic differs in the last digits.
    kernels: Mapped[str | None] = mapped_column(String(40))
    # Reproduction: the normalised spec's sha256 and the seed at submission; what a rerun repeats.
    spec_hash: Mapped[str | None] = mapped_column(String(64))
    seed: Mapped[int | None] = mapped_column(Integer)
    rerun_of: Mapped[str | None] = mapped_column(String(32))
    # A study's trial: its study, its number in the study, and what was varied.
    study_id: Mapped[str | None] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    trial_number: Mapped[int | None] = mapped_column(Integer)
    trial_params: Mapped[dict[str, Any] | None]
    # When the queue was last handed this experiment; NULL while no delivery succeeded (the
    # broker was down), so the sweep delivers it.
    delivered_at: Mapped[datetime | None]
    # A client's Idempotency-Key and a digest of the request it came with: a retried POST
    # returns this experiment instead of creating another.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    owner_id: Mapped[str | None] = _owner_column()
    owner_name: Mapped[str | None] = _owner_name(owner_id)

    __table_args__ = (
        # The list's sorts, ending with the id that breaks ties in its keyset pages (0012).
        Index("ix_experiments_status_created", "status", "created_at", "id"),
        Index("ix_experiments_created", "created_at", "id"),
        Index("ix_experiments_test_accuracy", "test_accuracy", "id"),
        Index("ix_experiments_owner_created", "owner_id", "created_at", "id"),
        # What reads look up by id without the wide row: a tag's page its sort keys, fair
        # share each attempt's client (0014).
        Index("ix_experiments_id_keys", "id", "client_id", "created_at", "test_accuracy"),
        # The newest first-attempt successes, which the time estimates read.
        Index("ix_experiments_status_finished", "status", "finished_at"),
        Index("ix_experiments_client_status", "client_id", "status"),
        # Two workers advancing one study can never both create its trial N.
        Index("ix_experiments_study_trial", "study_id", "trial_number", unique=True),
        Index("ux_experiments_client_idempotency", "client_id", "idempotency_key", unique=True),
    )


def queued_experiment(
    *,
    name: str,
    description: str | None,
    spec: dict[str, Any],
    summary: dict[str, Any] | None,
    client_id: str,
    max_attempts: int,
    spec_hash: str | None = None,
    seed: int | None = None,
    rerun_of: str | None = None,
    idempotency_key: str | None = None,
    request_digest: str | None = None,
    study_id: str | None = None,
    trial_number: int | None = None,
    trial_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of a new experiment, queued: the one place such a row is made up (an
    admission inserts them in one conditional statement, a study's trial as an ORM row).

    A None JSON value is left out, so the column is SQL NULL rather than JSON `null`.
    """
    now = utcnow()
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "name": name,
        "description": description,
        "spec": spec,
        "summary": summary,
        "status": Status.QUEUED.value,
        "client_id": client_id,
        "owner_id": owner_of(client_id),
        "created_at": now,
        "attempt": 0,
        "max_attempts": max_attempts,
        "cancel_requested": False,
        # Optimistic: the caller clears it when the queue refuses; were the caller to die
        # before enqueueing, the sweep finds the row missing from the queue all the same.
        "delivered_at": now,
        "spec_hash": spec_hash,
        "seed": seed,
        "rerun_of": rerun_of,
        "idempotency_key": idempotency_key,
        "request_digest": request_digest,
        "study_id": study_id,
        "trial_number": trial_number,
        "trial_params": trial_params,
    }
    return {
        column: value
        for column, value in values.items()
        if value is not None or column not in ("summary", "trial_params")
    }


class StudyRow(Base):
    """A sweep: its definition (base spec, search space, sampler, pruner) and where it stands."""

    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[str] = mapped_column(String(200), default="anonymous")
    definition: Mapped[dict[str, Any]]
    # Grid and random studies draw every trial up front: [{"params", "label", "summary"}, ...].
    plan: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(16))
    # Bumped by every advance: the conditional update that takes the study's row lock.
    advances: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    owner_id: Mapped[str | None] = _owner_column()
    owner_name: Mapped[str | None] = _owner_name(owner_id)


class EpochRow(Base):
    __tablename__ = "epochs"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    loss: Mapped[float | None] = mapped_column(Float)  # NULL: not a number (diverged)
    accuracy: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    attempt: Mapped[int] = mapped_column(Integer)
    learning_rate: Mapped[float | None] = mapped_column(Float)  # NULL: recorded before 0003
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    # The newest epochs of any experiment: how long an epoch takes now, for the estimates.
    __table_args__ = (Index("ix_epochs_recorded_at", "recorded_at"),)


class AttemptRow(Base):
    __tablename__ = "attempts"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker: Mapped[str | None] = mapped_column(String(200))
    start_epoch: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)

    # Fair share reads the attempts running or ended within its half-lives.
    __table_args__ = (Index("ix_attempts_ended_at", "ended_at"),)


class ModelAliasRow(Base):
    __tablename__ = "model_aliases"

    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    owner_id: Mapped[str | None] = _owner_column()
    owner_name: Mapped[str | None] = _owner_name(owner_id)


class EvaluationRow(Base):
    """An experiment's test-set evaluation: made when its training succeeds, or on request."""

    __tablename__ = "evaluations"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16))  # pending, ready or failed
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    evaluation: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)


class LayerStatsRow(Base):
    """The layer health of one epoch: a list of per-layer figures, first layer first."""

    __tablename__ = "layer_stats"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    layers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class ChangeRow(Base):
    """One entry of the change log that event streams replay; written only by the triggers of
    migration 0008, so every writer (API or worker, any machine) appends to it."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # status, epoch, deleted
    payload: Mapped[str] = mapped_column(Text)  # JSON, as the trigger wrote it
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.current_timestamp())

    __table_args__ = (
        Index("ix_changes_experiment_id", "experiment_id", "id"),
        {"sqlite_autoincrement": True},
    )


class ExperimentTagRow(Base):
    """One of an experiment's tags: a class or a question that groups runs.

    `created_at` is the experiment's, copied when the tag is written (an experiment's never
    changes), so that a tag's page in created order is one range of the (tag, created_at,
    experiment_id) index instead of all the tag's runs looked up and sorted. Nullable only
    because SQLite adds a NOT NULL column solely by rebuilding the table: every insert gives
    it, and migration 0015 filled the rows before it."""

    __tablename__ = "experiment_tags"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_experiment_tags_tag_created", "tag", "created_at", "experiment_id"),
    )


class ChallengeRow(Base):
    """A class challenge: its rules, its allowance and when it closes. `split_seed` draws the
    test set's public and private halves; it never leaves the service."""

    __tablename__ = "challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    rules: Mapped[dict[str, Any]]
    max_entries_per_person: Mapped[int | None] = mapped_column(Integer)
    closes_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    split_seed: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChallengeEntryRow(Base):
    """An experiment entered into a challenge by a person; its scores once it is evaluated."""

    __tablename__ = "challenge_entries"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    challenge_id: Mapped[str] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    entrant: Mapped[str] = mapped_column(String(200))
    """Who entered it: the person's key, what the allowance and the leaderboard group by."""
    entrant_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    public_score: Mapped[float | None] = mapped_column(Float)
    private_score: Mapped[float | None] = mapped_column(Float)
    # The full test set's scores, held here (not on the experiment) while the challenge is
    # open: no route can show a student a number that covers the private half before the close.
    sealed_test_loss: Mapped[float | None] = mapped_column(Float)
    sealed_test_accuracy: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_challenge_entries_challenge_entrant", "challenge_id", "entrant"),)
