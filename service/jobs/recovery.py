"""Recovery: the sweep that puts lost jobs right, run by the API at start-up and by each worker.

It requeues experiments whose lease expired (their worker died) and delivers again the queued
experiments whose delivery the queue lost: those never delivered (the broker was down when
they were submitted), and those delivered more than REDELIVER_AFTER_SECONDS ago that the queue
no longer holds, however busy it is. The database row decides; the queue only delivers, and a
duplicate delivery is harmless (a claim takes only a queued row).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from service.db import admission, leases
from service.db.session import Database
from service.domain import utcnow
from service.jobs.queue import JobQueue

log = logging.getLogger(__name__)

# A queued experiment delivered this long ago that the queue no longer holds lost its delivery
# (Huey does not retry; a database error in a claim drops the message). Long enough that a
# message being handed to a worker at this moment is rarely delivered twice.
REDELIVER_AFTER_SECONDS = 30.0


def sweep_once(db: Database, queue: JobQueue) -> leases.SweepResult:
    """Requeue expired leases; re-deliver queued jobs when the queue has lost them."""
    with db.scope() as session:
        result = leases.sweep(session)
    for experiment_id in result.requeued:
        queue.enqueue(experiment_id)
    if result.requeued or result.failed or result.cancelled:
        log.warning(
            "sweep: requeued %s, failed %s, cancelled %s",
            result.requeued,
            result.failed,
            result.cancelled,
        )
    redeliver_lost(db, queue)
    return result


def redeliver_lost(db: Database, queue: JobQueue) -> list[str]:
    """Deliver queued experiments the queue does not hold: never delivered, or lost since."""
    now = utcnow()
    with db.scope() as session:
        candidates = admission.awaiting_delivery(
            session, delivered_before=now - timedelta(seconds=REDELIVER_AFTER_SECONDS)
        )
    if not candidates:
        return []
    held = queue.pending_ids()
    lost = [experiment_id for experiment_id in candidates if experiment_id not in held]
    delivered = []
    for experiment_id in lost:
        log.warning("delivering queued experiment %s, which the queue does not hold", experiment_id)
        queue.enqueue(experiment_id)
        delivered.append(experiment_id)
    with db.scope() as session:
        admission.mark_delivered(session, [*delivered, *held.intersection(candidates)], at=now)
    return delivered


class Sweeper(threading.Thread):
    """Runs `sweep_once`, then `after_sweep`, every `interval` seconds until `stopped` is set
    (a worker's thread)."""

    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        interval: float,
        *,
        after_sweep: Callable[[Database, JobQueue], None] | None = None,
    ) -> None:
        super().__init__(name="sweeper", daemon=True)
        self.db = db
        self.queue = queue
        self.interval = interval
        self.after_sweep = after_sweep
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                sweep_once(self.db, self.queue)
                if self.after_sweep is not None:
                    self.after_sweep(self.db, self.queue)
            except Exception:  # a database blip must not end the sweeping
                log.exception("sweep failed; retrying in %.0f s", self.interval)
            self.stopped.wait(self.interval)
