"""Recovery: the sweep that puts lost jobs right, run by the API at start-up and by each worker.

It requeues experiments whose lease expired (their worker died) and delivers again the queued
experiments whose delivery the queue lost. The database row decides; the queue only delivers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from service.db import leases
from service.db.models import utcnow
from service.db.session import Database
from service.jobs.queue import JobQueue

log = logging.getLogger(__name__)

# A queued experiment this old with nothing pending in the queue lost its delivery.
ORPHAN_AFTER_SECONDS = 30.0


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
    if queue.pending() == 0:
        cutoff = utcnow() - timedelta(seconds=ORPHAN_AFTER_SECONDS)
        with db.scope() as session:
            orphans = leases.orphaned_queued(session, older_than=cutoff)
        for experiment_id in orphans:
            log.warning("re-delivering queued experiment %s", experiment_id)
            queue.enqueue(experiment_id)
    return result


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
