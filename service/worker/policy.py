"""The supervisor's decisions, as pure functions of what it observes.

While a training runs, its supervisor polls: it tells `next_action` what it has seen (the job's
exit code once it ended, the worker's shutdown, the answer of the heartbeat it has just sent)
and gets back one action and its updated `Watch`; supervisor.py only carries the actions out.
Once the training stopped, `settlement` says what to write for an attempt that wrote no outcome
of its own. Nothing here reads a clock, a database or a process, so every rule is tested fast.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, replace
from enum import Enum

from service.config import Settings
from service.db.leases import Charge, Pulse
from service.domain import Status
from service.worker.protocol import EXIT_DRAINED, EXIT_INFRASTRUCTURE
from service.worker.retry import RetryPolicy


class Action(Enum):
    """What the supervisor does next."""

    WAIT = "wait"
    """Nothing until the next poll."""
    HEARTBEAT = "heartbeat"
    """Renew the lease; tell the next call its answer."""
    DRAIN = "drain"
    """Ask the training to stop after its current epoch (DRAIN_SIGNAL)."""
    CANCEL = "cancel"
    """Ask the training to stop, recorded cancelled (CANCEL_SIGNAL)."""
    LET_FINISH = "let finish"
    """The training wrote its own outcome: let it clean up and answer, kill it after a grace."""
    STOP = "stop"
    """Kill the training now; `Watch.stopped` says why."""
    SETTLE = "settle"
    """The job ended (`Watch.returncode`): settle what it did not write."""


class Stopped(Enum):
    """Why the supervisor killed its training."""

    HURRIED = "the shutdown's grace is over"
    LEASE_LOST = "another attempt holds the lease"
    LEASE_UNRENEWABLE = "the lease could not be renewed before it would expire"
    CANCEL_GRACE = "cancelled, and it did not stop within CANCEL_GRACE_SECONDS"
    WALL_TIME = "it ran past MAX_TRAIN_SECONDS"


@dataclass(frozen=True)
class Limits:
    """The settings the decisions depend on."""

    heartbeat_seconds: float
    lease_seconds: float
    cancel_grace_seconds: float
    max_train_seconds: float
    wall_time_rule: str = "MAX_TRAIN_SECONDS"
    """What set max_train_seconds, for the failure's message: the setting, or a challenge's rule."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            heartbeat_seconds=settings.heartbeat_seconds,
            lease_seconds=settings.lease_seconds,
            cancel_grace_seconds=settings.cancel_grace_seconds,
            max_train_seconds=settings.max_train_seconds,
        )

    @property
    def renewal_window(self) -> float:
        """How long without a renewal the supervisor lets its training run: a heartbeat short
        of the lease, so a sweep never hands the job on while it still trains."""
        return self.lease_seconds - self.heartbeat_seconds

    @property
    def retries(self) -> RetryPolicy:
        return RetryPolicy(max_seconds=self.heartbeat_seconds)


@dataclass(frozen=True)
class Heartbeat:
    """A heartbeat's answer: its pulse, or the database error that kept it from one."""

    sent_at: float
    """When it was sent (before the call): a renewed lease runs at least a lease from then."""
    pulse: Pulse | None
    error: BaseException | None = None


@dataclass(frozen=True)
class Seen:
    """What the supervisor observed at `now` (monotonic seconds)."""

    now: float
    returncode: int | None = None
    """How the job ended, once it has: its answer, or its process's exit code (negative:
    killed by that signal)."""
    draining: bool = False
    """The worker shuts down: let the training finish its epoch."""
    hurry: bool = False
    """The shutdown's grace is over: stop the training now."""
    heartbeat: Heartbeat | None = None
    """The answer of the heartbeat sent since the last call, if one was."""


@dataclass(frozen=True)
class Watch:
    """What the supervisor knows of its training and has done about it."""

    started: float
    renewed_at: float
    next_heartbeat: float
    failures: int = 0
    """Heartbeats failed in a row."""
    cancel_signalled_at: float | None = None
    drained: bool = False
    """Asked to drain, or stopped because the shutdown's grace was over."""
    ended: bool = False
    """The training wrote its own outcome (the heartbeat said so)."""
    stopped: Stopped | None = None
    returncode: int | None = None

    @classmethod
    def claimed(cls, *, renewed_at: float, now: float, limits: Limits) -> Watch:
        return cls(
            started=now, renewed_at=renewed_at, next_heartbeat=now + limits.heartbeat_seconds
        )

    @property
    def lost(self) -> bool:
        """Stopped because the lease is, or is about to be, another's."""
        return self.stopped in (Stopped.LEASE_LOST, Stopped.LEASE_UNRENEWABLE)


@dataclass(frozen=True)
class Decision:
    action: Action
    watch: Watch
    retry_in: float | None = None
    """After a failed heartbeat: when the next one goes."""


def next_action(watch: Watch, seen: Seen, limits: Limits) -> Decision:
    """One decision: the job's end first, then the shutdown's hurry, the heartbeat's answer,
    the drain, the cancel grace, the wall-time limit, and a heartbeat when one is due."""
    if seen.returncode is not None:
        if seen.heartbeat is not None and seen.heartbeat.pulse is not None:
            watch = _renewed(watch, seen.heartbeat, limits)  # the settling runs a lease from it
        return Decision(Action.SETTLE, replace(watch, returncode=seen.returncode))
    if seen.hurry:
        return _stop(replace(watch, drained=True), Stopped.HURRIED)
    if seen.heartbeat is not None:
        decision = _answered(watch, seen.heartbeat, seen.now, limits)
        if decision.action is not Action.WAIT or decision.retry_in is not None:
            return decision
        watch = decision.watch
    if seen.draining and not watch.drained:
        return Decision(Action.DRAIN, replace(watch, drained=True))
    if (
        watch.cancel_signalled_at is not None
        and seen.now - watch.cancel_signalled_at > limits.cancel_grace_seconds
    ):
        return _stop(watch, Stopped.CANCEL_GRACE)
    if seen.now - watch.started > limits.max_train_seconds:
        return _stop(watch, Stopped.WALL_TIME)
    if seen.now >= watch.next_heartbeat:
        return Decision(Action.HEARTBEAT, watch)
    return Decision(Action.WAIT, watch)


def _answered(watch: Watch, heartbeat: Heartbeat, now: float, limits: Limits) -> Decision:
    """What a heartbeat's answer changes: WAIT with no `retry_in` when nothing needs doing."""
    pulse = heartbeat.pulse
    if pulse is None:
        if now - watch.renewed_at >= limits.renewal_window:
            return _stop(watch, Stopped.LEASE_UNRENEWABLE)
        failures = watch.failures + 1
        delay = limits.retries.delay(failures)
        watch = replace(watch, failures=failures, next_heartbeat=now + delay)
        return Decision(Action.WAIT, watch, retry_in=delay)
    watch = _renewed(watch, heartbeat, limits)
    if pulse.ended:
        return Decision(Action.LET_FINISH, replace(watch, ended=True))
    if not pulse.alive:
        return _stop(watch, Stopped.LEASE_LOST)
    if pulse.cancel_requested and watch.cancel_signalled_at is None:
        return Decision(Action.CANCEL, replace(watch, cancel_signalled_at=now))
    return Decision(Action.WAIT, watch)


def _renewed(watch: Watch, heartbeat: Heartbeat, limits: Limits) -> Watch:
    return replace(
        watch,
        failures=0,
        renewed_at=heartbeat.sent_at,
        next_heartbeat=heartbeat.sent_at + limits.heartbeat_seconds,
    )


def _stop(watch: Watch, why: Stopped) -> Decision:
    return Decision(Action.STOP, replace(watch, stopped=why))


# Settling an attempt that wrote no outcome -----------------------------------------------------


@dataclass(frozen=True)
class Finish:
    """End the experiment with `status` (the supervisor knows how it ended)."""

    status: Status
    error: str | None


@dataclass(frozen=True)
class Release:
    """Give the attempt up: requeue while attempts remain; `charge` says if this one counts."""

    reason: str
    charge: Charge


def settlement(watch: Watch, limits: Limits) -> Finish | Release | None:
    """What to write for a job that ended; None when it is not the supervisor's to write (the
    training wrote its outcome, or the lease is another's: its sweep or new attempt decides)."""
    if watch.lost or watch.ended:
        return None
    if watch.stopped is Stopped.WALL_TIME:
        return Finish(
            Status.FAILED,
            f"training ran past the {limits.max_train_seconds:g} s wall-time limit "
            f"({limits.wall_time_rule}); train fewer epochs or a smaller net",
        )
    if watch.cancel_signalled_at is not None:
        return Finish(Status.CANCELLED, None)
    returncode = watch.returncode
    if watch.drained and (returncode == EXIT_DRAINED or returncode is None or returncode < 0):
        return Release(f"its worker shut down ({describe(returncode)})", Charge.REFUND)
    if returncode == EXIT_INFRASTRUCTURE:
        return Release(
            "the training process met an infrastructure error (database or store)",
            Charge.REFUND_IF_PROGRESSED,
        )
    return Release(f"the training process died ({describe(returncode)})", Charge.SPEND)


def describe(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"
