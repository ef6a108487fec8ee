"""The class's people: adding them, finding one by a token's digest, rotating and revoking
tokens, and where each one's work stands."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, type_coerce
from sqlalchemy.orm import Session

from service.db.clock import database_now
from service.db.models import AttemptRow, ExperimentRow, PersonRow, UTCDateTime
from service.domain import FINISHED, Person, PersonActivity, Role, Status, person_client_id
from service.errors import NameTaken, PersonNotFound


def to_person(row: PersonRow) -> Person:
    return Person(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def anyone(session: Session) -> bool:
    """Whether anybody was ever added (revoked people count: the class exists)."""
    return bool(session.scalar(select(exists().where(PersonRow.id.is_not(None)))))


def add_people(session: Session, people: Sequence[tuple[str, Role, str]]) -> list[Person]:
    """Add (name, role, token digest) each; a name already in the class refuses them all."""
    names = [name for name, _, _ in people]
    taken = sorted(session.scalars(select(PersonRow.name).where(PersonRow.name.in_(names))))
    if taken:
        raise NameTaken(
            f"the class already has {', '.join(repr(name) for name in taken)}; choose other "
            "names, or rotate an existing person's token with POST /people/{id}/token"
        )
    now = database_now(session)
    rows = [
        PersonRow(
            id=uuid.uuid4().hex, name=name, role=role.value, token_hash=digest, created_at=now
        )
        for name, role, digest in people
    ]
    session.add_all(rows)
    session.flush()
    return [to_person(row) for row in rows]


def by_token_digest(session: Session, digest: str) -> Person | None:
    """The person whose current token has this sha256; None for an unknown or revoked one."""
    row = session.scalar(select(PersonRow).where(PersonRow.token_hash == digest))
    return None if row is None else to_person(row)


def by_name(session: Session, name: str) -> Person | None:
    row = session.scalar(select(PersonRow).where(PersonRow.name == name))
    return None if row is None else to_person(row)


def _row(session: Session, person_id: str) -> PersonRow:
    row = session.get(PersonRow, person_id)
    if row is None:
        raise PersonNotFound(f"no person with id {person_id!r}; list them with GET /people")
    return row


def set_token_digest(session: Session, person_id: str, digest: str) -> Person:
    """Give the person a new token: the old one opens nothing from this commit on (a revoked
    person is let back in)."""
    row = _row(session, person_id)
    row.token_hash = digest
    row.revoked_at = None
    return to_person(row)


def revoke(session: Session, person_id: str) -> Person:
    """Their token opens nothing any more; their work stays, still theirs."""
    row = _row(session, person_id)
    row.token_hash = None
    row.revoked_at = row.revoked_at or database_now(session)
    return to_person(row)


def training_seconds_since(
    session: Session, since: datetime, *, now: datetime, client_id: str | None = None
) -> dict[str, float]:
    """Seconds of training each client used since `since` (attempts still running count up to
    `now`), by client id."""
    query = (
        select(ExperimentRow.client_id, AttemptRow.started_at, AttemptRow.ended_at)
        .join(ExperimentRow, ExperimentRow.id == AttemptRow.experiment_id)
        .where(AttemptRow.ended_at.is_(None) | (AttemptRow.ended_at > since))
    )
    if client_id is not None:
        query = query.where(ExperimentRow.client_id == client_id)
    used: dict[str, float] = {}
    for client, started, stopped in session.execute(query):
        stopped = stopped or now
        seconds = (min(stopped, now) - max(started, since)).total_seconds()
        used[client] = used.get(client, 0.0) + max(0.0, seconds)
    return used


def start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def next_day(now: datetime) -> datetime:
    return start_of_day(now) + timedelta(days=1)


def activity(session: Session) -> list[PersonActivity]:
    """Every person with their queued, running and done work, best test accuracy (and its
    run), training seconds today and when they last submitted or trained; by name."""
    people = [to_person(row) for row in session.scalars(select(PersonRow).order_by(PersonRow.name))]
    counts: dict[tuple[str, str], int] = {}
    last: dict[str, datetime] = {}
    for owner, status, count, latest in session.execute(
        select(
            ExperimentRow.owner_id,
            ExperimentRow.status,
            func.count(),
            type_coerce(
                func.max(func.coalesce(ExperimentRow.finished_at, ExperimentRow.created_at)),
                UTCDateTime(),
            ),
        )
        .where(ExperimentRow.owner_id.is_not(None))
        .group_by(ExperimentRow.owner_id, ExperimentRow.status)
    ):
        assert owner is not None
        counts[(owner, status)] = count
        if latest is not None:
            last[owner] = max(last.get(owner, latest), latest)
    best: dict[str, tuple[float, str]] = {}
    for owner, accuracy, experiment_id in session.execute(
        select(ExperimentRow.owner_id, ExperimentRow.test_accuracy, ExperimentRow.id)
        .where(ExperimentRow.owner_id.is_not(None), ExperimentRow.test_accuracy.is_not(None))
        .order_by(ExperimentRow.test_accuracy.desc(), ExperimentRow.finished_at)
    ):
        assert owner is not None
        assert accuracy is not None
        best.setdefault(owner, (accuracy, experiment_id))
    now = database_now(session)
    today = training_seconds_since(session, start_of_day(now), now=now)
    done = {status.value for status in FINISHED}
    return [
        PersonActivity(
            person=person,
            queued=counts.get((person.id, Status.QUEUED.value), 0),
            running=counts.get((person.id, Status.RUNNING.value), 0),
            done=sum(
                n for (owner, status), n in counts.items() if owner == person.id and status in done
            ),
            best_accuracy=best[person.id][0] if person.id in best else None,
            best_experiment_id=best[person.id][1] if person.id in best else None,
            training_seconds_today=today.get(person_client_id(person.id), 0.0),
            last_active=last.get(person.id),
        )
        for person in people
    ]
