"""What reading experiments answers beyond their rows: time estimates, the compact table, CSV."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from service import spreadsheets
from service.config import Settings
from service.db import claims, repository
from service.domain import Experiment, Status, utcnow
from service.estimates import Estimate, estimate, job_overhead, typical_seconds
from service.jobs.fair_share import Policy
from service.overview import COLUMNS, RunOverview, overview


def estimates(
    session: Session, settings: Settings, *, now: datetime | None = None
) -> dict[str, Estimate]:
    """Queue position, estimated start and time left of every queued or running experiment;
    the queue in the order fair share will start it."""
    now = now or utcnow()
    typical = typical_seconds(repository.recent_epoch_seconds(session))
    active = repository.active_experiments(session)
    running = [experiment.id for experiment in active if experiment.status is Status.RUNNING]
    return estimate(
        in_run_order(session, settings, active, now=now, typical_epoch_seconds=typical),
        repository.histories(session, running),
        typical_epoch_seconds=typical,
        slots=settings.worker_slots,
        now=now,
        overhead=job_overhead(repository.recent_job_timings(session)),
    )


def in_run_order(
    session: Session,
    settings: Settings,
    active: Sequence[Experiment],
    *,
    now: datetime,
    typical_epoch_seconds: float | None = None,
) -> list[Experiment]:
    """The running experiments, then the queued ones in the order they will start."""
    order = claims.fair_queue(
        session,
        Policy.from_settings(settings),
        now=now,
        typical_epoch_seconds=typical_epoch_seconds,
    )
    place = {experiment_id: number for number, experiment_id in enumerate(order)}
    running = [experiment for experiment in active if experiment.status is Status.RUNNING]
    queued = [experiment for experiment in active if experiment.status is Status.QUEUED]
    return running + sorted(queued, key=lambda experiment: place.get(experiment.id, len(place)))


def overviews(session: Session, experiments: Sequence[Experiment]) -> list[RunOverview]:
    histories = repository.histories(session, [experiment.id for experiment in experiments])
    return [overview(experiment, histories[experiment.id]) for experiment in experiments]


def as_csv(rows: Sequence[RunOverview]) -> str:
    """The compact table as CSV: one header line, one line per run, empty for unknown."""
    values = ([getattr(row, column) for column in COLUMNS] for row in rows)
    return spreadsheets.as_csv(
        COLUMNS, ([" ".join(v) if isinstance(v, tuple) else v for v in row] for row in values)
    )
