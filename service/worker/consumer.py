"""A worker: the Huey consumer with N slots, plus the sweep that recovers lost jobs."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from functools import partial

from service.config import Settings
from service.db import leases
from service.db.models import utcnow
from service.db.session import Database
from service.jobs.queue import JobQueue
from service.usecases.studies import advance_after_trial, advance_studies
from service.worker.lifeline import watch_parent
from service.worker.supervisor import Supervisor

log = logging.getLogger(__name__)

# A queued experiment this old with nothing pending in the queue lost its delivery.
ORPHAN_AFTER_SECONDS = 30.0


def worker_label(settings: Settings) -> str:
    return settings.worker_label or f"{socket.gethostname()}:{os.getpid()}"


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
    advance_studies(db, queue)
    return result


class Sweeper(threading.Thread):
    def __init__(self, db: Database, queue: JobQueue, interval: float) -> None:
        super().__init__(name="sweeper", daemon=True)
        self.db = db
        self.queue = queue
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                sweep_once(self.db, self.queue)
            except Exception:  # a database blip must not end the sweeping
                log.exception("sweep failed; retrying in %.0f s", self.interval)
            self.stopped.wait(self.interval)


def run_worker(settings: Settings) -> None:
    """Block, consuming training jobs with `settings.worker_slots` slots, until signalled."""
    watch_parent()
    db = Database(settings.database_url)
    label = worker_label(settings)
    queue = JobQueue(settings.queue_url)
    supervisor = Supervisor(
        settings=settings,
        db=db,
        worker=label,
        requeue=queue.enqueue,
        after_job=partial(advance_after_trial, db, queue),
    )
    queue.handler = supervisor.run_job
    sweeper = Sweeper(db, queue, settings.sweep_seconds)
    sweeper.start()
    log.info("worker %s: %d slot(s) on %s", label, settings.worker_slots, settings.queue_url)
    consumer = queue.huey.create_consumer(
        workers=settings.worker_slots,
        worker_type="thread",
        periodic=False,
        initial_delay=0.05,
        max_delay=0.5,
        backoff=1.1,
    )
    try:
        consumer.run()
    finally:
        sweeper.stopped.set()
        db.dispose()
