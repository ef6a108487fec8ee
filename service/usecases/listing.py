"""What reading experiments answers beyond their rows: time estimates, the compact table, CSV."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from service import spreadsheets
from service.config import Settings
from service.db import changes, claims, repository
from service.domain import Experiment, Status, utcnow
from service.domain.pages import RunHead
from service.estimates import Estimate, estimate, job_overhead, typical_seconds
from service.jobs.fair_share import Policy
from service.overview import COLUMNS, EpochColumns, RunOverview, head, overview


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


# The statuses an estimate is made for (`estimate` answers for the queue and the running).
ACTIVE = frozenset({Status.QUEUED, Status.RUNNING})

# How long estimates may be reused while the change log stands still: they move with the clock
# too (a running job's time left), by at most this much.
ESTIMATES_MAX_AGE_SECONDS = 1.0


class EstimateCache:
    """The last `estimates`, answered again while nothing they are computed from has changed.

    Every list page and every experiment read computes them, and at a term's size that is most
    of such a read (fair share decays thousands of recent attempts). What they read changes
    only with a row the change log records (a submission, a claim, an epoch, a finish, a
    cancel, a deletion), so they are reused while the log's head is where it was, and for at
    most `max_age` seconds, as the clock moves them too. One per API process.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        max_age: float = ESTIMATES_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.max_age = max_age
        self.clock = clock
        # One computation at a time: a class polling its jobs sees the log move several times a
        # second, and each move would otherwise send every waiting read to compute its own copy.
        self._computing = threading.Lock()
        self._kept: tuple[int, float, dict[str, Estimate]] | None = None

    def get(self, session: Session) -> dict[str, Estimate]:
        head = changes.head(session)
        kept = self._fresh_since(head)
        if kept is not None:
            return kept
        with self._computing:
            # Computed by another read while this one waited, from a head at least as new.
            kept = self._fresh_since(head)
            if kept is not None:
                return kept
            now = self.clock()
            fresh = estimates(session, self.settings)
            self._kept = (head, now, fresh)
            return fresh

    def of(self, session: Session, experiments: Sequence[Experiment]) -> dict[str, Estimate]:
        """The estimates of `experiments`: none computed when none of them is queued or
        running, as only those have one. A page of finished runs is most of a term's reads,
        and computing the whole queue's estimates was their slowest part once a second."""
        if not any(experiment.status in ACTIVE for experiment in experiments):
            return {}
        return self.get(session)

    def _fresh_since(self, head: int) -> dict[str, Estimate] | None:
        kept = self._kept  # one read of one reference: no lock needed
        if kept is not None and kept[0] >= head and self.clock() - kept[1] <= self.max_age:
            return kept[2]
        return None


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


def overviews(session: Session, runs: Sequence[Experiment | RunHead]) -> list[RunOverview]:
    """The compact table's rows of `runs`: whole experiments, or what a compact page read of
    them (the same rows either way)."""
    heads = [run if isinstance(run, RunHead) else head(run) for run in runs]
    epochs = repository.epoch_rows(session, [run.id for run in heads])
    return [overview(run, EpochColumns.of_rows(epochs[run.id])) for run in heads]


def as_csv(rows: Sequence[RunOverview]) -> str:
    """The compact table as CSV: one header line, one line per run, empty for unknown."""
    values = ([getattr(row, column) for column in COLUMNS] for row in rows)
    return spreadsheets.as_csv(
        COLUMNS, ([" ".join(v) if isinstance(v, tuple) else v for v in row] for row in values)
    )
