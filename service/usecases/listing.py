"""What reading experiments answers beyond their rows: time estimates, the compact table, CSV."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from service import spreadsheets
from service.config import Settings
from service.db import repository
from service.domain import Experiment, Status, utcnow
from service.estimates import Estimate, estimate, job_overhead, typical_seconds
from service.overview import COLUMNS, RunOverview, overview


def estimates(
    session: Session, settings: Settings, *, now: datetime | None = None
) -> dict[str, Estimate]:
    """Queue position, estimated start and time left of every queued or running experiment."""
    active = repository.active_experiments(session)
    running = [experiment.id for experiment in active if experiment.status is Status.RUNNING]
    return estimate(
        active,
        repository.histories(session, running),
        typical_epoch_seconds=typical_seconds(repository.recent_epoch_seconds(session)),
        slots=settings.worker_slots,
        now=now or utcnow(),
        overhead=job_overhead(repository.recent_job_timings(session)),
    )


def overviews(session: Session, experiments: Sequence[Experiment]) -> list[RunOverview]:
    histories = repository.histories(session, [experiment.id for experiment in experiments])
    return [overview(experiment, histories[experiment.id]) for experiment in experiments]


def as_csv(rows: Sequence[RunOverview]) -> str:
    """The compact table as CSV: one header line, one line per run, empty for unknown."""
    values = ([getattr(row, column) for column in COLUMNS] for row in rows)
    return spreadsheets.as_csv(
        COLUMNS, ([" ".join(v) if isinstance(v, tuple) else v for v in row] for row in values)
    )
