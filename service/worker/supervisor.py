"""Runs one delivered job: claim the row, hand it to the slot's training process, keep its
lease alive.

The supervisor (a Huey worker thread per slot) owns everything the training process cannot do
for itself: the heartbeat while an epoch is long, cancellation with a grace period, the
wall-time limit, a graceful release when its worker shuts down, and requeueing when the process
stops without saying how the job ended. It never leaves its training behind: a database error
during a heartbeat is retried until the lease would expire, and then the training is stopped.
Stopping a training kills its process; the slot's next job gets a fresh one (host.py).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from service.config import Settings
from service.db import leases
from service.db.session import Database
from service.domain import Claim, Status
from service.jobs.fair_share import Policy
from service.worker.host import Hosts, TrainingHost
from service.worker.job_signals import CANCEL_SIGNAL, DRAIN_SIGNAL
from service.worker.training import (
    EXIT_DRAINED,
    EXIT_INFRASTRUCTURE,
    attempt_dir,
    remove_local_files,
)

log = logging.getLogger(__name__)

TERMINATE_GRACE_SECONDS = 5.0
# How long a training that already wrote its outcome may take to answer (its clean-up).
EXIT_GRACE_SECONDS = 30.0
# How often the supervisor looks at its training between heartbeats (exit, shutdown).
POLL_SECONDS = 0.2
# A failed database call is retried after this, doubling up to the heartbeat interval.
FIRST_RETRY_SECONDS = 0.25


@dataclass
class _Watch:
    cancel_signalled_at: float | None = None
    timed_out: bool = False
    lost: bool = False
    ended: bool = False
    drained: bool = False
    returncode: int | None = None
    """How the job ended: its process's answer, or the process's own exit code if it died
    or was stopped (negative: by that signal)."""
    renewed_at: float = 0.0
    """When the lease was last renewed (monotonic, taken before the call): the lease runs at
    least `lease_seconds` from then."""


class Shutdown:
    """The worker's shutdown, as its supervisors see it: `draining` once asked to stop (finish
    the current epoch, then release), `hurry` once the grace is over (stop the trainings now)."""

    def __init__(self) -> None:
        self.draining = threading.Event()
        self.hurry = threading.Event()


class Supervisor:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        worker: str,
        requeue: Callable[[str], None],
        after_job: Callable[[str], None] | None = None,
        shutdown: Shutdown | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.worker = worker
        self.requeue = requeue
        self.after_job = after_job
        self.shutdown = shutdown or Shutdown()
        self.hosts = Hosts(
            jobs_per_host=settings.training_process_jobs,
            idle_seconds=settings.training_process_idle_seconds,
        )

    def close(self) -> None:
        """Let the slots' training processes go (the worker stops)."""
        self.hosts.close()

    def run_job(self, experiment_id: str) -> None:
        if self.shutdown.draining.is_set():
            # Dequeued as the worker began to shut down: leave it for another worker.
            self._deliver_again(experiment_id)
            return
        # A delivery is a nudge that a slot may take a job: the database picks which one,
        # the fairest (service.jobs.fair_share), which need not be the one delivered. Each
        # queued job was delivered once, so every job still gets its turn.
        with self.db.scope() as session:
            claim = leases.claim_fairest(
                session,
                worker=self.worker,
                lease_seconds=self.settings.lease_seconds,
                policy=Policy.from_settings(self.settings),
            )
        if claim is None:
            log.info("nothing queued may start (delivered: experiment %s)", experiment_id)
            return
        experiment_id = claim.experiment_id
        renewed_at = time.monotonic()
        log.info(
            "experiment %s starts on worker %s, attempt %s of %s%s%s",
            experiment_id,
            self.worker,
            claim.attempt,
            self.settings.max_attempts,
            f", from epoch {claim.start_epoch + 1}" if claim.start_epoch else "",
            f", by {claim.owner}" if claim.owner else "",
        )
        host = self.hosts.dispatch(experiment_id, claim.attempt)
        watch = self._supervise(claim, host, _Watch(renewed_at=renewed_at))
        self._settle(claim, watch)
        # A training that was killed (by us, the wall-time limit, or anyone) left its files.
        remove_local_files(attempt_dir(self.settings.work_dir, experiment_id, claim.attempt))
        self.hosts.release(host)
        if self.after_job is not None:
            self.after_job(experiment_id)  # e.g. a study starts its next trials

    def _supervise(self, claim: Claim, host: TrainingHost, watch: _Watch) -> _Watch:
        settings = self.settings
        started = time.monotonic()
        next_heartbeat = started + settings.heartbeat_seconds
        retry_after = FIRST_RETRY_SECONDS
        while True:
            watch.returncode = host.wait(POLL_SECONDS)
            if watch.returncode is not None:
                return watch
            now = time.monotonic()
            if self.shutdown.hurry.is_set():
                log.warning("shutdown grace over; stopping the training of %s", claim.experiment_id)
                watch.drained = True
                watch.returncode = host.stop(grace=0)
                return watch
            if self.shutdown.draining.is_set() and not watch.drained:
                watch.drained = True
                host.signal(DRAIN_SIGNAL)
            if now < next_heartbeat:
                continue
            attempted_at = now
            try:
                with self.db.scope() as session:
                    pulse = leases.heartbeat(
                        session,
                        experiment_id=claim.experiment_id,
                        attempt=claim.attempt,
                        lease_seconds=settings.lease_seconds,
                    )
            except SQLAlchemyError as error:
                # Before the lease can expire (with a heartbeat to spare), stop the training:
                # past that moment a sweep may hand the job to another worker.
                if time.monotonic() - watch.renewed_at >= _renewal_window(settings):
                    log.error(
                        "cannot renew the lease on %s (%s); stopping its training",
                        claim.experiment_id,
                        error,
                    )
                    watch.lost = True
                    watch.returncode = host.stop(grace=0)
                    return watch
                log.warning(
                    "heartbeat of %s failed (%s); retrying in %.2f s",
                    claim.experiment_id,
                    type(error).__name__,
                    retry_after,
                )
                next_heartbeat = time.monotonic() + retry_after
                retry_after = min(retry_after * 2, settings.heartbeat_seconds)
                continue
            watch.renewed_at = attempted_at
            retry_after = FIRST_RETRY_SECONDS
            next_heartbeat = attempted_at + settings.heartbeat_seconds
            now = time.monotonic()
            if pulse.ended:
                # The training wrote its own outcome and is still cleaning up: let it finish
                # (checkpoints, work files) and answer instead of killing it half-way.
                watch.ended = True
                watch.returncode = host.wait(EXIT_GRACE_SECONDS)
                if watch.returncode is None:
                    watch.returncode = host.stop(grace=0)
                return watch
            if not pulse.alive:
                log.warning("lost the lease on %s; stopping its training", claim.experiment_id)
                watch.lost = True
                watch.returncode = host.stop(grace=0)
                return watch
            if pulse.cancel_requested and watch.cancel_signalled_at is None:
                host.signal(CANCEL_SIGNAL)
                watch.cancel_signalled_at = now
            if (
                watch.cancel_signalled_at is not None
                and now - watch.cancel_signalled_at > settings.cancel_grace_seconds
            ):
                watch.returncode = host.stop(grace=0)
                return watch
            if now - started > settings.max_train_seconds:
                watch.timed_out = True
                watch.returncode = host.stop(grace=TERMINATE_GRACE_SECONDS)
                return watch

    def _settle(self, claim: Claim, watch: _Watch) -> None:
        """Decide the ending the training process could not write itself, retrying a database
        error while the lease still holds; past that, the sweep decides."""
        if watch.lost or watch.ended:
            return
        retry_after = FIRST_RETRY_SECONDS
        while True:
            attempted_at = time.monotonic()
            try:
                status = self._write_ending(claim, watch)
                break
            except SQLAlchemyError as error:
                if attempted_at - watch.renewed_at >= self.settings.lease_seconds:
                    log.error(
                        "could not settle %s (%s); the sweep will", claim.experiment_id, error
                    )
                    return
                log.warning("settling %s failed (%s); retrying", claim.experiment_id, error)
                time.sleep(retry_after)
                retry_after = min(retry_after * 2, self.settings.heartbeat_seconds)
        if status is Status.QUEUED:
            log.warning(
                "training of %s stopped (%s); requeued",
                claim.experiment_id,
                _describe(watch.returncode),
            )
            self._deliver_again(claim.experiment_id)

    def _write_ending(self, claim: Claim, watch: _Watch) -> Status | None:
        with self.db.scope() as session:
            if watch.timed_out:
                leases.finish(
                    session,
                    experiment_id=claim.experiment_id,
                    attempt=claim.attempt,
                    status=Status.FAILED,
                    error=(
                        f"training ran past the {self.settings.max_train_seconds:g} s wall-time "
                        "limit (MAX_TRAIN_SECONDS); train fewer epochs or a smaller net"
                    ),
                )
                return None
            if watch.cancel_signalled_at is not None:
                leases.finish(
                    session,
                    experiment_id=claim.experiment_id,
                    attempt=claim.attempt,
                    status=Status.CANCELLED,
                    error=None,
                )
                return None
            reason, charge = _loss(watch)
            return leases.release(
                session,
                experiment_id=claim.experiment_id,
                attempt=claim.attempt,
                reason=reason,
                charge=charge,
            )

    def _deliver_again(self, experiment_id: str) -> None:
        try:
            self.requeue(experiment_id)
        except Exception:  # the broker is down: the row is queued, and the sweep re-delivers it
            log.exception("could not re-deliver experiment %s", experiment_id)


def _renewal_window(settings: Settings) -> float:
    """How long without a renewal the supervisor lets its training run."""
    return settings.lease_seconds - settings.heartbeat_seconds


def _loss(watch: _Watch) -> tuple[str, leases.Charge]:
    """Why an attempt that wrote no outcome ended, and whether it costs the job an attempt."""
    returncode = watch.returncode
    if watch.drained and (returncode == EXIT_DRAINED or returncode is None or returncode < 0):
        return f"its worker shut down ({_describe(returncode)})", leases.Charge.REFUND
    if returncode == EXIT_INFRASTRUCTURE:
        return (
            "the training process met an infrastructure error (database or store)",
            leases.Charge.REFUND_IF_PROGRESSED,
        )
    return f"the training process died ({_describe(returncode)})", leases.Charge.SPEND


def _describe(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"
