"""Claims: a worker takes a queued experiment for a new attempt, and the fair-share order in
which the claims take them (`service.jobs.fair_share` decides, this module reads the database).

Each claim hands out the next attempt number, the fencing token that `service.db.leases` checks
on every later write of that attempt.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, false, func, select, update
from sqlalchemy.orm import Session

from service.db.clock import database_now
from service.db.models import AttemptRow, EpochRow, ExperimentRow
from service.db.portable import epoch_seconds, greatest
from service.domain import Claim, Status
from service.jobs.fair_share import (
    DEFAULT_JOB_SECONDS,
    Policy,
    Waiting,
    fair_order,
    may_start,
)


def claim(
    session: Session, *, experiment_id: str, worker: str, lease_seconds: float
) -> Claim | None:
    """Take a queued experiment for a new attempt; None when it is no longer queued."""
    now = database_now(session)
    taken = session.execute(
        update(ExperimentRow)
        .where(
            ExperimentRow.id == experiment_id,
            ExperimentRow.status == Status.QUEUED,
            ExperimentRow.cancel_requested.is_(False),
        )
        .values(
            status=Status.RUNNING,
            attempt=ExperimentRow.attempt + 1,
            lease_owner=worker,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
    )
    if cast(CursorResult[Any], taken).rowcount != 1:
        return None
    row = session.get(ExperimentRow, experiment_id, populate_existing=True)
    assert row is not None
    if row.started_at is None:
        row.started_at = now
    done = session.scalar(
        select(EpochRow.epoch)
        .where(EpochRow.experiment_id == experiment_id)
        .order_by(EpochRow.epoch.desc())
        .limit(1)
    )
    session.add(
        AttemptRow(
            experiment_id=experiment_id,
            number=row.attempt,
            worker=worker,
            start_epoch=done or 0,
            started_at=now,
        )
    )
    return Claim(
        experiment_id=experiment_id,
        attempt=row.attempt,
        worker=worker,
        spec=row.spec,
        start_epoch=done or 0,
        owner=row.owner_name,
    )


# Claims of all workers queue up on this PostgreSQL advisory lock: the fair choice reads
# everyone's usage, so two claims must not choose at once from the same picture.
CLAIM_LOCK = 0x6D6E6973  # "mnis"
# Training older than this many half-lives weighs under 0.1% and is not read.
USAGE_HALF_LIVES = 10


def _serialise_claims(session: Session) -> None:
    """Hold off every other claim until this transaction ends. On SQLite a write that changes
    nothing takes the database's write lock before anything is read (no stale snapshot)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK)))
    else:
        session.execute(update(ExperimentRow).where(false()).values(attempt=ExperimentRow.attempt))


def waiting_jobs(session: Session, *, typical_epoch_seconds: float | None = None) -> list[Waiting]:
    """The queued jobs a claim may take (not flagged for cancel), oldest first."""
    rows = session.execute(
        select(
            ExperimentRow.id, ExperimentRow.client_id, ExperimentRow.created_at, ExperimentRow.spec
        )
        .where(ExperimentRow.status == Status.QUEUED, ExperimentRow.cancel_requested.is_(False))
        .order_by(ExperimentRow.created_at, ExperimentRow.id)
    ).all()
    pace = typical_epoch_seconds or DEFAULT_JOB_SECONDS
    return [
        Waiting(
            experiment_id=id_,
            client_id=client,
            created_at=created,
            seconds=pace * int(spec.get("fit", {}).get("epochs", 1)),
        )
        for id_, client, created, spec in rows
    ]


def usage(session: Session, *, now: datetime, half_life: float) -> dict[str, float]:
    """Each client's decayed training time (FAIR_SHARE_HALF_LIFE), from its attempts.

    `decayed_seconds` of every attempt running or ended within the half-lives, summed by the
    database: at a term's size that is thousands of attempts, and reading them into Python
    (two timestamps parsed each) took most of every time estimate (25-40 ms at 100,000
    experiments). 2^-(age / half-life) is written exp(-age * ln 2 / half-life).
    """
    since = now - timedelta(seconds=half_life * USAGE_HALF_LIVES)
    rate = math.log(2) / half_life
    clock = now.timestamp()
    # Ages in seconds before `now` of the span's end and start: an attempt still running, or
    # ending after `now` (a clock behind the workers'), counts up to now.
    ended = clock - func.coalesce(epoch_seconds(AttemptRow.ended_at), clock)
    newest = greatest(ended, 0.0)
    oldest = greatest(clock - epoch_seconds(AttemptRow.started_at), ended, 0.0)
    decayed = (func.exp(-rate * newest) - func.exp(-rate * oldest)) / rate
    return {
        client: float(seconds)
        for client, seconds in session.execute(
            select(ExperimentRow.client_id, func.sum(decayed))
            .join(ExperimentRow, ExperimentRow.id == AttemptRow.experiment_id)
            .where(AttemptRow.ended_at.is_(None) | (AttemptRow.ended_at > since))
            .group_by(ExperimentRow.client_id)
        )
    }


def running_per_person(session: Session) -> dict[str, int]:
    """How many trainings each person runs (MAX_RUNNING_PER_PERSON holds people only)."""
    return {
        client: count
        for client, count in session.execute(
            select(ExperimentRow.client_id, func.count())
            .where(ExperimentRow.status == Status.RUNNING, ExperimentRow.owner_id.is_not(None))
            .group_by(ExperimentRow.client_id)
        )
    }


def _queue_order(
    session: Session,
    policy: Policy,
    *,
    now: datetime,
    running: dict[str, int],
    typical_epoch_seconds: float | None = None,
) -> list[Waiting]:
    waiting = waiting_jobs(session, typical_epoch_seconds=typical_epoch_seconds)
    if not policy.fair:  # first come, first served: one queue, nobody's usage
        return waiting
    return fair_order(
        waiting,
        usage(session, now=now, half_life=policy.half_life),
        running,
        max_running=policy.max_running,
    )


def fair_queue(
    session: Session,
    policy: Policy,
    *,
    now: datetime,
    typical_epoch_seconds: float | None = None,
) -> list[str]:
    """The queued experiments' ids in the order the claims will take them (as far as the
    usage now, and each job's expected length, say)."""
    order = _queue_order(
        session,
        policy,
        now=now,
        running=running_per_person(session),
        typical_epoch_seconds=typical_epoch_seconds,
    )
    return [job.experiment_id for job in order]


def claim_fairest(
    session: Session, *, worker: str, lease_seconds: float, policy: Policy
) -> Claim | None:
    """Take the queued job the policy picks (`service.jobs.fair_share`), in one transaction
    that holds off every other claim; None when nothing queued may start (nothing queued, or
    only the jobs of people at MAX_RUNNING_PER_PERSON)."""
    _serialise_claims(session)
    now = database_now(session)
    running = running_per_person(session) if policy.fair else {}
    order = _queue_order(session, policy, now=now, running=running)
    max_running = policy.max_running
    for job in order:
        if not may_start(job, running, max_running=max_running):
            return None  # everyone after it is at the limit too
        taken = claim(
            session, experiment_id=job.experiment_id, worker=worker, lease_seconds=lease_seconds
        )
        if taken is not None:
            return taken
    return None
