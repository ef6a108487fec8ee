"""A worker: the Huey consumer with N slots, plus the sweeper that recovers lost jobs.

SIGTERM (or SIGINT) drains it: no more claims, each training finishes its current epoch
(checkpointed and recorded) and its claim goes back to `queued` without spending an attempt.
A second request, or SHUTDOWN_GRACE_SECONDS running out, stops the trainings at once; their
claims are released all the same, from the last checkpoint. One request reaching the worker
twice (Ctrl-C to the group of `python -m service`, which also forwards it) counts once.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import time
from types import FrameType

from huey.consumer import Consumer

from service.config import Settings
from service.db.session import Database
from service.jobs.queue import JobQueue
from service.jobs.recovery import Sweeper
from service.usecases.challenges import unseal_closed
from service.usecases.studies import advance_after_trial, advance_studies
from service.worker.host import Hosts
from service.worker.lifeline import FORWARDED_STOP_SIGNAL, GROUP_STOP_SIGNALS, watch_parent
from service.worker.supervisor import Shutdown, Supervisor

log = logging.getLogger(__name__)

# After the grace, how long the slots get to stop their trainings and release the claims.
RELEASE_SECONDS = 10.0
POLL_SECONDS = 0.2
# How often a dead slot thread is replaced (what Huey's own run loop would do).
HEALTH_CHECK_SECONDS = 10.0


def worker_label(settings: Settings) -> str:
    return settings.worker_label or f"{socket.gethostname()}:{os.getpid()}"


class StopRequests:
    """How many times the worker was asked to stop (a handler only sets numbers: no lock).

    A request comes as a signal of its own (SIGTERM, SIGINT), or forwarded by the API that
    embeds this worker (FORWARDED_STOP_SIGNAL). A signal to the whole process group reaches the
    worker both ways: the Nth forwarded request is the Nth direct one, not one more.
    """

    def __init__(self) -> None:
        self.direct = 0
        self.forwarded = 0

    @property
    def count(self) -> int:
        return max(self.direct, self.forwarded)

    def install(self) -> None:
        for signum in (*GROUP_STOP_SIGNALS, FORWARDED_STOP_SIGNAL):
            signal.signal(signum, self.received)

    def received(self, signum: int, _frame: FrameType | None = None) -> None:
        before = self.count
        if signum == FORWARDED_STOP_SIGNAL:
            self.forwarded += 1
            name = "a stop request from the API"
        else:
            self.direct += 1
            name = signal.Signals(signum).name
        if self.count > before:
            log.warning("received %s (%d)", name, self.count)


def _after_sweep(db: Database, queue: JobQueue) -> None:
    """Each sweep also lets studies start trials a lost worker never started, and unseals the
    entries of challenges that closed by time."""
    advance_studies(db, queue)
    unseal_closed(db, queue)


def run_worker(settings: Settings) -> None:
    """Block, consuming training jobs with `settings.worker_slots` slots, until signalled."""
    watch_parent()
    db = Database.from_settings(settings)
    label = worker_label(settings)
    queue = JobQueue.from_settings(settings)
    shutdown = Shutdown()
    hosts = Hosts(
        jobs_per_host=settings.training_process_jobs,
        idle_seconds=settings.training_process_idle_seconds,
    )
    supervisor = Supervisor(
        settings=settings,
        db=db,
        worker=label,
        hosts=hosts,
        requeue=queue.enqueue,
        after_job=functools.partial(advance_after_trial, db, queue),
        shutdown=shutdown,
    )
    queue.handler = supervisor.run_job
    queue.evaluation_handler = supervisor.run_evaluation
    # Each sweep also lets studies start trials that a lost worker never started.
    sweeper = Sweeper(db, queue, settings.sweep_seconds, after_sweep=_after_sweep)
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
    signals = StopRequests()
    try:
        consumer.start()
        signals.install()  # after Huey's own handlers, which would stop without releasing
        checked = time.monotonic()
        while not signals.count:
            time.sleep(POLL_SECONDS)
            hosts.close_idle()
            if time.monotonic() - checked > HEALTH_CHECK_SECONDS:
                checked = time.monotonic()
                consumer.check_worker_health()
        _drain(consumer, shutdown, signals, settings.shutdown_grace_seconds)
    finally:
        sweeper.stopped.set()
        hosts.close()  # the slots' training processes go with the worker
        db.dispose()


def _drain(consumer: Consumer, shutdown: Shutdown, signals: StopRequests, grace: float) -> None:
    """Stop dequeuing, let the trainings finish their epoch, then hurry them; wait for the
    slots to release their claims."""
    log.warning("shutting down: no more claims; trainings finish their epoch (%g s)", grace)
    consumer.stop_flag.set()  # the slots stop dequeuing once their current job is done
    shutdown.draining.set()
    slots = [thread for _, thread in consumer.worker_threads]
    deadline = time.monotonic() + grace
    while any(slot.is_alive() for slot in slots):
        if signals.count > 1 or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    if any(slot.is_alive() for slot in slots):
        log.warning("stopping the remaining trainings now; their claims are released")
        shutdown.hurry.set()
        for slot in slots:
            slot.join(RELEASE_SECONDS)
    log.info("worker stopped")
