"""A worker: the Huey consumer with N slots, plus the sweeper that recovers lost jobs."""

from __future__ import annotations

import functools
import logging
import os
import socket

from service.config import Settings
from service.db.session import Database
from service.jobs.queue import JobQueue
from service.jobs.recovery import Sweeper
from service.usecases.studies import advance_after_trial, advance_studies
from service.worker.evaluation import run_evaluation_job
from service.worker.lifeline import watch_parent
from service.worker.supervisor import Supervisor

log = logging.getLogger(__name__)


def worker_label(settings: Settings) -> str:
    return settings.worker_label or f"{socket.gethostname()}:{os.getpid()}"


def run_worker(settings: Settings) -> None:
    """Block, consuming training jobs with `settings.worker_slots` slots, until signalled."""
    watch_parent()
    db = Database.from_settings(settings)
    label = worker_label(settings)
    queue = JobQueue.from_settings(settings)
    supervisor = Supervisor(
        settings=settings,
        db=db,
        worker=label,
        requeue=queue.enqueue,
        after_job=functools.partial(advance_after_trial, db, queue),
    )
    queue.handler = supervisor.run_job
    queue.evaluation_handler = functools.partial(run_evaluation_job, settings)
    # Each sweep also lets studies start trials that a lost worker never started.
    sweeper = Sweeper(db, queue, settings.sweep_seconds, after_sweep=advance_studies)
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
