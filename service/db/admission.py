"""Admitting a new experiment and tracking its delivery: the per-client queue cap, enforced
in the same statement that inserts the row; Idempotency-Key look-ups; and `delivered_at`,
which the sweep reads to deliver what the queue never got or lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from service.db.models import ExperimentRow, ExperimentTagRow, queued_experiment
from service.db.repository import get_experiment
from service.db.session import Database
from service.domain import Experiment, Status


@dataclass(frozen=True)
class Admission:
    """What a submission came to: the experiment, and whether it was there already (the same
    Idempotency-Key sent before); None when the client's queue was full."""

    experiment: Experiment | None
    replayed: bool = False
    request_digest: str | None = None
    """The digest the stored experiment was created with (for a replay)."""


def find_by_idempotency_key(
    session: Session, *, client_id: str, idempotency_key: str
) -> Admission | None:
    """The experiment this client created with this key, and the digest of its request."""
    found = session.execute(
        select(ExperimentRow.id, ExperimentRow.request_digest).where(
            ExperimentRow.client_id == client_id, ExperimentRow.idempotency_key == idempotency_key
        )
    ).one_or_none()
    if found is None:
        return None
    return Admission(get_experiment(session, found.id), replayed=True, request_digest=found[1])


def _lock_client(session: Session, client_id: str) -> None:
    """Serialise admissions of one client on PostgreSQL, where two concurrent conditional
    inserts would each miss the other's row. SQLite writes one transaction at a time, and the
    conditional insert below is the transaction's first statement, so it needs no lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(client_id))))


def count_queued(session: Session, *, client_id: str) -> int:
    """The client's queued experiments, with the client's admissions held off until this
    transaction ends (for a caller that then inserts several, as a study does)."""
    _lock_client(session, client_id)
    query = select(func.count()).where(
        ExperimentRow.client_id == client_id, ExperimentRow.status == Status.QUEUED
    )
    return session.scalar(query) or 0


@dataclass(frozen=True)
class NewExperiment:
    """A validated, dry-run experiment on its way into the database."""

    name: str
    description: str | None
    spec: dict[str, Any]
    summary: dict[str, Any]
    client_id: str
    max_attempts: int
    # Reproduction: the normalised spec's sha256, its seed, and the experiment it repeats.
    spec_hash: str | None = None
    seed: int | None = None
    rerun_of: str | None = None
    tags: tuple[str, ...] = ()


def _row_values(
    new: NewExperiment, *, idempotency_key: str | None, request_digest: str | None
) -> dict[str, Any]:
    """The experiments row for `new`, queued (its tags go to their own table)."""
    return queued_experiment(
        name=new.name,
        description=new.description,
        spec=new.spec,
        summary=new.summary,
        client_id=new.client_id,
        max_attempts=new.max_attempts,
        spec_hash=new.spec_hash,
        seed=new.seed,
        rerun_of=new.rerun_of,
        idempotency_key=idempotency_key,
        request_digest=request_digest,
    )


def _insert_below_cap(
    values: dict[str, Any], *, client_id: str, max_queued: int
) -> ReturningInsert[tuple[str]]:
    """INSERT ... SELECT <values> WHERE <client's queued> < cap: counting and inserting are
    one statement. RETURNING says whether the row went in (psycopg reports no rowcount for
    INSERT ... SELECT)."""
    table = ExperimentRow.__table__
    assert isinstance(table, Table)
    queued = (
        select(func.count())
        .select_from(table)
        .where(table.c.client_id == client_id, table.c.status == Status.QUEUED.value)
        .scalar_subquery()
    )
    row = select(*(literal(value, type_=table.c[column].type) for column, value in values.items()))
    return (
        insert(table)
        .from_select(list(values), row.where(queued < max_queued))
        .returning(table.c.id)
    )


def admit(
    db: Database,
    new: NewExperiment,
    *,
    max_queued: int,
    idempotency_key: str | None = None,
    request_digest: str | None = None,
) -> Admission:
    """Insert `new`, queued, unless its client already has `max_queued` queued; with an
    Idempotency-Key the client used before, the experiment it created then (replayed)."""
    client_id = new.client_id
    values = _row_values(new, idempotency_key=idempotency_key, request_digest=request_digest)
    statement = _insert_below_cap(values, client_id=client_id, max_queued=max_queued)
    try:
        with db.scope() as session:
            _lock_client(session, client_id)
            if idempotency_key is not None:
                earlier = find_by_idempotency_key(
                    session, client_id=client_id, idempotency_key=idempotency_key
                )
                if earlier is not None:
                    return earlier
            if session.execute(statement).scalar_one_or_none() is None:
                return Admission(None)
            session.add_all(
                ExperimentTagRow(
                    experiment_id=values["id"], tag=tag, created_at=values["created_at"]
                )
                for tag in new.tags
            )
            session.flush()
            return Admission(get_experiment(session, values["id"]))
    except IntegrityError:
        # The same key, sent twice at once (on SQLite, which has no lock to wait on): the
        # first insert won; answer with its experiment.
        if idempotency_key is None:
            raise
        with db.scope() as session:
            earlier = find_by_idempotency_key(
                session, client_id=client_id, idempotency_key=idempotency_key
            )
        if earlier is None:
            raise
        return earlier


def mark_delivered(session: Session, experiment_ids: Iterable[str], *, at: datetime) -> None:
    ids = list(experiment_ids)
    if ids:
        session.execute(
            update(ExperimentRow).where(ExperimentRow.id.in_(ids)).values(delivered_at=at)
        )


def mark_undelivered(session: Session, experiment_id: str) -> None:
    """The queue refused the delivery (broker down): the sweep delivers it at its next round."""
    session.execute(
        update(ExperimentRow).where(ExperimentRow.id == experiment_id).values(delivered_at=None)
    )


def awaiting_delivery(session: Session, *, delivered_before: datetime) -> list[str]:
    """Queued experiments never delivered, or last delivered before `delivered_before`, oldest
    first: those the sweep checks against what the queue holds."""
    return list(
        session.scalars(
            select(ExperimentRow.id)
            .where(
                ExperimentRow.status == Status.QUEUED,
                ExperimentRow.cancel_requested.is_(False),
                ExperimentRow.delivered_at.is_(None)
                | (ExperimentRow.delivered_at < delivered_before),
            )
            .order_by(ExperimentRow.created_at)
        )
    )
