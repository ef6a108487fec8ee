"""Runs one delivered job: claim the row, hand it to the slot's training process, keep its
lease alive.

The supervisor (a Huey worker thread per slot) owns everything the training process cannot do
for itself: the heartbeat while an epoch is long, cancellation with a grace period, the
wall-time limit, a graceful release when its worker shuts down, and requeueing when the process
stops without saying how the job ended. It never leaves its training behind: a database error
during a heartbeat is retried until the lease would expire, and then the training is stopped.
What to do when is decided in policy.py; this module carries it out. Stopping a training kills
its process; the slot's next job gets a fresh one (host.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from service.config import Settings
from service.db import challenges, claims, insight, leases
from service.db.session import Database
from service.domain import Claim, Status
from service.jobs.fair_share import Policy
from service.worker.policy import (
    Action,
    Finish,
    Heartbeat,
    Limits,
    Release,
    Seen,
    Stopped,
    Watch,
    describe,
    next_action,
    settlement,
)
from service.worker.protocol import (
    CANCEL_SIGNAL,
    DRAIN_SIGNAL,
    EXIT_DRAINED,
    EXIT_EVALUATION_FAILED,
    EXIT_OK,
    attempt_dir,
    remove_local_files,
)

log = logging.getLogger(__name__)

# How long a training that already wrote its outcome may take to answer (its clean-up).
EXIT_GRACE_SECONDS = 30.0
# How often the supervisor looks at its training between heartbeats (exit, shutdown).
POLL_SECONDS = 0.2
# One forward pass over 10,000 images takes seconds; this only stops a process that hangs.
EVALUATION_TIMEOUT_SECONDS = 600.0


class Host(Protocol):
    """A training process as its supervisor drives it (host.TrainingHost)."""

    def wait(self, timeout: float) -> int | None: ...
    def signal(self, signum: int) -> None: ...
    def stop(self) -> int: ...


class HostPool(Protocol):
    """Where a slot's jobs are trained (host.Hosts)."""

    def job(self, experiment_id: str, attempt: int | None) -> AbstractContextManager[Host]:
        """The slot's training process, sent the job (attempt None: the experiment's
        evaluation); given back on exit."""
        ...


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
        hosts: HostPool,
        requeue: Callable[[str], None],
        after_job: Callable[[str], None] | None = None,
        shutdown: Shutdown | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.db = db
        self.worker = worker
        self.hosts = hosts
        self.requeue = requeue
        self.after_job = after_job
        self.shutdown = shutdown or Shutdown()
        self.clock = clock
        self.limits = Limits.from_settings(settings)

    def run_job(self, experiment_id: str) -> None:
        if self.shutdown.draining.is_set():
            # Dequeued as the worker began to shut down: leave it for another worker.
            self._deliver_again(experiment_id)
            return
        claim = self._claim(experiment_id)
        if claim is None:
            log.info("nothing queued may start (delivered: experiment %s)", experiment_id)
            return
        experiment_id = claim.experiment_id
        renewed_at = self.clock()
        log.info(
            "experiment %s starts on worker %s, attempt %s of %s%s%s",
            experiment_id,
            self.worker,
            claim.attempt,
            self.settings.max_attempts,
            f", from epoch {claim.start_epoch + 1}" if claim.start_epoch else "",
            f", by {claim.owner}" if claim.owner else "",
        )
        limits = self._limits_for(experiment_id)
        with self.hosts.job(experiment_id, claim.attempt) as host:
            watch = self._supervise(claim, host, renewed_at=renewed_at, limits=limits)
            self._settle(claim, watch, limits)
            # A training that was killed (by us, the wall-time limit, or anyone) left its files.
            remove_local_files(attempt_dir(self.settings.work_dir, experiment_id, claim.attempt))
        if self.after_job is not None:
            self.after_job(experiment_id)  # e.g. a study starts its next trials

    def run_evaluation(self, experiment_id: str) -> None:
        """An evaluation asked for after the training, in the slot's training process; what
        that process could not record (it died, or hung and was killed) is recorded here."""
        with self.hosts.job(experiment_id, None) as host:
            code = host.wait(EVALUATION_TIMEOUT_SECONDS)
            if code is None:
                code = host.stop()
        if code in (EXIT_OK, EXIT_EVALUATION_FAILED):
            return
        with self.db.scope() as session:
            insight.fail_evaluation(
                session,
                experiment_id=experiment_id,
                error=f"the evaluation process died ({describe(code)})",
            )

    def _claim(self, experiment_id: str) -> Claim | None:
        """Take the fairest queued job for a new attempt (None: none may start now).

        A delivery is a nudge that a slot may take a job: the database picks which one, the
        fairest (service.jobs.fair_share), which need not be the one delivered. Each queued
        job was delivered once, so every job still gets its turn."""
        with self.db.scope() as session:
            return claims.claim_fairest(
                session,
                worker=self.worker,
                lease_seconds=self.settings.lease_seconds,
                policy=Policy.from_settings(self.settings),
            )

    def _limits_for(self, experiment_id: str) -> Limits:
        """The worker's limits, with a challenge entry's wall-time rule where it is tighter."""
        with self.db.scope() as session:
            rule = challenges.train_seconds_limit(session, experiment_id)
        if rule is None or rule >= self.limits.max_train_seconds:
            return self.limits
        return replace(
            self.limits,
            max_train_seconds=rule,
            wall_time_rule="the challenge's max_train_seconds rule",
        )

    def _supervise(self, claim: Claim, host: Host, *, renewed_at: float, limits: Limits) -> Watch:
        """Carry out the policy's actions until the job has ended or been stopped."""
        watch = Watch.claimed(renewed_at=renewed_at, now=self.clock(), limits=limits)
        heartbeat: Heartbeat | None = None
        while True:
            returncode = host.wait(0 if heartbeat is not None else POLL_SECONDS)
            seen = Seen(
                now=self.clock(),
                returncode=returncode,
                draining=self.shutdown.draining.is_set(),
                hurry=self.shutdown.hurry.is_set(),
                heartbeat=heartbeat,
            )
            decision = next_action(watch, seen, limits)
            watch, heartbeat = decision.watch, None
            match decision.action:
                case Action.SETTLE:
                    return watch
                case Action.HEARTBEAT:
                    heartbeat = self._heartbeat(claim)
                case Action.DRAIN:
                    host.signal(DRAIN_SIGNAL)
                case Action.CANCEL:
                    host.signal(CANCEL_SIGNAL)
                case Action.LET_FINISH:
                    # It wrote its own outcome and is cleaning up (checkpoints, work files):
                    # let it answer instead of killing it half-way.
                    answered = host.wait(EXIT_GRACE_SECONDS)
                    if answered is None:
                        return self._stopped(claim, host, watch)
                    return replace(watch, returncode=answered)
                case Action.STOP:
                    return self._stopped(claim, host, watch, seen.heartbeat)
                case Action.WAIT if decision.retry_in is not None and seen.heartbeat is not None:
                    log.warning(
                        "heartbeat of %s failed (%s); retrying in %.2f s",
                        claim.experiment_id,
                        type(seen.heartbeat.error).__name__,
                        decision.retry_in,
                    )

    def _heartbeat(self, claim: Claim) -> Heartbeat:
        sent_at = self.clock()
        try:
            with self.db.scope() as session:
                pulse = leases.heartbeat(
                    session,
                    experiment_id=claim.experiment_id,
                    attempt=claim.attempt,
                    lease_seconds=self.settings.lease_seconds,
                )
        except SQLAlchemyError as error:
            return Heartbeat(sent_at=sent_at, pulse=None, error=error)
        return Heartbeat(sent_at=sent_at, pulse=pulse)

    def _stopped(
        self, claim: Claim, host: Host, watch: Watch, heartbeat: Heartbeat | None = None
    ) -> Watch:
        """Kill the training; the watch with its exit code."""
        if watch.stopped is Stopped.HURRIED:
            log.warning("shutdown grace over; stopping the training of %s", claim.experiment_id)
        elif watch.stopped is Stopped.LEASE_UNRENEWABLE:
            error = heartbeat.error if heartbeat is not None else None
            log.error(
                "cannot renew the lease on %s (%s); stopping its training",
                claim.experiment_id,
                error,
            )
        elif watch.stopped is Stopped.LEASE_LOST:
            log.warning("lost the lease on %s; stopping its training", claim.experiment_id)
        return replace(watch, returncode=host.stop())

    def _settle(self, claim: Claim, watch: Watch, limits: Limits) -> None:
        """Write the ending the training process could not write itself, retrying a database
        error while the lease still holds; past that, the sweep decides."""
        ending = settlement(watch, limits)
        if ending is None:
            return
        try:
            status = limits.retries.call(
                lambda: self._write_ending(claim, ending),
                retry_on=(SQLAlchemyError,),
                deadline=watch.renewed_at + self.settings.lease_seconds,
                what=f"settling {claim.experiment_id}",
                clock=self.clock,
            )
        except SQLAlchemyError as error:
            log.error("could not settle %s (%s); the sweep will", claim.experiment_id, error)
            return
        if status is Status.QUEUED:
            if watch.returncode == EXIT_DRAINED:
                log.info(
                    "experiment %s: epoch done, released for another worker", claim.experiment_id
                )
            else:
                log.warning(
                    "training of %s stopped (%s); requeued",
                    claim.experiment_id,
                    describe(watch.returncode),
                )
            self._deliver_again(claim.experiment_id)

    def _write_ending(self, claim: Claim, ending: Finish | Release) -> Status | None:
        with self.db.scope() as session:
            if isinstance(ending, Finish):
                leases.finish(
                    session,
                    experiment_id=claim.experiment_id,
                    attempt=claim.attempt,
                    status=ending.status,
                    error=ending.error,
                )
                return None
            return leases.release(
                session,
                experiment_id=claim.experiment_id,
                attempt=claim.attempt,
                reason=ending.reason,
                charge=ending.charge,
            )

    def _deliver_again(self, experiment_id: str) -> None:
        try:
            self.requeue(experiment_id)
        except Exception:  # the broker is down: the row is queued, and the sweep re-delivers it
            log.exception("could not re-deliver experiment %s", experiment_id)
