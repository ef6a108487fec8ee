"""Operational figures read from the database at scrape time: they hold for every API process and
every worker at once, wherever those run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from service.db.models import AttemptRow, EpochRow, ExperimentRow
from service.domain import Status

LEASE_EXPIRED = "lease_expired"
PROCESS_DIED = "process_died"


@dataclass(frozen=True)
class Operations:
    """What `/metrics` reports from the database."""

    experiments_by_status: dict[str, int]
    heartbeat_age_by_worker: dict[str, float]
    attempts_lost_by_reason: dict[str, int]
    epoch_buckets: list[tuple[float, int]]  # (upper bound, epochs at most that long), cumulative
    epoch_count: int
    epoch_seconds_sum: float


def operations(
    session: Session, *, now: datetime, lease_seconds: float, epoch_bounds: tuple[float, ...]
) -> Operations:
    by_status = dict.fromkeys((status.value for status in Status), 0)
    for status, count in session.execute(
        select(ExperimentRow.status, func.count()).group_by(ExperimentRow.status)
    ):
        by_status[status] = count
    # A lease is renewed to `lease_seconds` from each heartbeat: its expiry dates the last one.
    ages: dict[str, float] = {}
    for owner, expires in session.execute(
        select(ExperimentRow.lease_owner, func.max(ExperimentRow.lease_expires_at))
        .where(ExperimentRow.status == Status.RUNNING, ExperimentRow.lease_owner.is_not(None))
        .group_by(ExperimentRow.lease_owner)
    ):
        if owner is not None and expires is not None:
            expires = expires if expires.tzinfo else expires.replace(tzinfo=now.tzinfo)
            ages[owner] = max(0.0, lease_seconds - (expires - now).total_seconds())
    reason = case(
        (AttemptRow.outcome.like("%stopped renewing its lease%"), LEASE_EXPIRED),
        else_=PROCESS_DIED,
    )
    lost = dict.fromkeys((LEASE_EXPIRED, PROCESS_DIED), 0)
    for why, count in session.execute(
        select(reason, func.count()).where(AttemptRow.outcome.like("lost:%")).group_by(reason)
    ):
        lost[why] = count
    columns: list[Any] = [func.count(), func.coalesce(func.sum(EpochRow.seconds), 0.0)]
    columns += [func.sum(case((EpochRow.seconds <= bound, 1), else_=0)) for bound in epoch_bounds]
    count, total, *within = session.execute(select(*columns)).one()
    return Operations(
        experiments_by_status=by_status,
        heartbeat_age_by_worker=ages,
        attempts_lost_by_reason=lost,
        epoch_buckets=[(bound, int(n or 0)) for bound, n in zip(epoch_bounds, within, strict=True)],
        epoch_count=int(count),
        epoch_seconds_sum=float(total),
    )
