"""Runs one delivered job: claim the row, start the training process, keep its lease alive.

The supervisor (a Huey worker thread) owns everything the training process cannot do for
itself: the heartbeat while an epoch is long, cancellation with a grace period, the wall-time
limit, and requeueing when the process dies without saying how it ended.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from service.config import Settings
from service.db import leases
from service.db.session import Database
from service.domain import Claim, Status
from service.worker.lifeline import child_env
from service.worker.training import CANCEL_SIGNAL, attempt_dir, remove_local_files

log = logging.getLogger(__name__)

TERMINATE_GRACE_SECONDS = 5.0
# How long a training that already wrote its outcome may take to exit (TensorFlow's teardown).
EXIT_GRACE_SECONDS = 30.0


@dataclass
class _Watch:
    cancel_signalled_at: float | None = None
    timed_out: bool = False
    lost: bool = False
    ended: bool = False


class Supervisor:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        worker: str,
        requeue: Callable[[str], None],
        after_job: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.worker = worker
        self.requeue = requeue
        self.after_job = after_job

    def run_job(self, experiment_id: str) -> None:
        with self.db.scope() as session:
            claim = leases.claim(
                session,
                experiment_id=experiment_id,
                worker=self.worker,
                lease_seconds=self.settings.lease_seconds,
            )
        if claim is None:
            log.info("experiment %s is not queued any more; skipping delivery", experiment_id)
            return
        log.info(
            "experiment %s starts on worker %s, attempt %s of %s%s",
            experiment_id,
            self.worker,
            claim.attempt,
            self.settings.max_attempts,
            f", from epoch {claim.start_epoch + 1}" if claim.start_epoch else "",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "service.worker.training", experiment_id, str(claim.attempt)],
            env=child_env(),
        )
        watch = self._supervise(claim, process)
        self._settle(claim, process.returncode, watch)
        # A training that was killed (by us, the wall-time limit, or anyone) left its files.
        remove_local_files(attempt_dir(self.settings.work_dir, experiment_id, claim.attempt))
        if self.after_job is not None:
            self.after_job(experiment_id)  # e.g. a study starts its next trials

    def _supervise(self, claim: Claim, process: subprocess.Popen[bytes]) -> _Watch:
        settings = self.settings
        watch = _Watch()
        started = time.monotonic()
        while True:
            try:
                process.wait(timeout=settings.heartbeat_seconds)
                return watch
            except subprocess.TimeoutExpired:
                pass
            with self.db.scope() as session:
                pulse = leases.heartbeat(
                    session,
                    experiment_id=claim.experiment_id,
                    attempt=claim.attempt,
                    lease_seconds=settings.lease_seconds,
                )
            now = time.monotonic()
            if pulse.ended:
                # The training wrote its own outcome and is still shutting down: let it finish
                # its clean-up (checkpoint, work files) instead of killing it half-way.
                watch.ended = True
                _await_exit(process, grace=EXIT_GRACE_SECONDS)
                return watch
            if not pulse.alive:
                log.warning("lost the lease on %s; stopping its training", claim.experiment_id)
                watch.lost = True
                _stop(process, grace=0)
                return watch
            if pulse.cancel_requested and watch.cancel_signalled_at is None:
                process.send_signal(CANCEL_SIGNAL)
                watch.cancel_signalled_at = now
            if (
                watch.cancel_signalled_at is not None
                and now - watch.cancel_signalled_at > settings.cancel_grace_seconds
            ):
                _stop(process, grace=0)
                return watch
            if now - started > settings.max_train_seconds:
                watch.timed_out = True
                _stop(process, grace=TERMINATE_GRACE_SECONDS)
                return watch

    def _settle(self, claim: Claim, returncode: int | None, watch: _Watch) -> None:
        """Decide the ending the training process could not write itself."""
        if watch.lost or watch.ended:
            return
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
                return
            if watch.cancel_signalled_at is not None:
                leases.finish(
                    session,
                    experiment_id=claim.experiment_id,
                    attempt=claim.attempt,
                    status=Status.CANCELLED,
                    error=None,
                )
                return
            status = leases.release(
                session,
                experiment_id=claim.experiment_id,
                attempt=claim.attempt,
                reason=f"the training process died ({_describe(returncode)})",
            )
        if status is Status.QUEUED:
            log.warning("training of %s died; requeued", claim.experiment_id)
            self.requeue(claim.experiment_id)


def _describe(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


def _await_exit(process: subprocess.Popen[bytes], *, grace: float) -> None:
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _stop(process, grace=0)


def _stop(process: subprocess.Popen[bytes], *, grace: float) -> None:
    if process.poll() is not None:
        return
    if grace > 0:
        process.terminate()
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    process.kill()
    process.wait()
