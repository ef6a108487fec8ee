"""The supervisor's decisions, one rule at a time: pure functions, no process, no database.

Each case builds what the supervisor has seen and checks the one action it takes next (and
what it remembers); `settlement` is checked for every way a job can end without writing its
outcome. The real-process tests (test_cancel, test_shutdown, test_recovery, ...) check that the
loop carries these decisions out.
"""

from __future__ import annotations

import signal
from dataclasses import replace

import pytest

from service.db.leases import Charge, Pulse
from service.domain import Status
from service.worker.policy import (
    Action,
    Decision,
    Finish,
    Heartbeat,
    Limits,
    Release,
    Seen,
    Stopped,
    Watch,
    next_action,
    settlement,
)
from service.worker.protocol import EXIT_DRAINED, EXIT_INFRASTRUCTURE, EXIT_LOST_LEASE, EXIT_OK

LIMITS = Limits(
    heartbeat_seconds=1.0, lease_seconds=6.0, cancel_grace_seconds=5.0, max_train_seconds=100.0
)
ALIVE = Pulse(alive=True, cancel_requested=False)
T0 = 1000.0


def fresh() -> Watch:
    return Watch.claimed(renewed_at=T0, now=T0, limits=LIMITS)


def answered(
    pulse: Pulse | None, *, sent_at: float, now: float, watch: Watch | None = None
) -> Decision:
    heartbeat = Heartbeat(sent_at=sent_at, pulse=pulse, error=None if pulse else OSError("down"))
    return next_action(watch or fresh(), Seen(now=now, heartbeat=heartbeat), LIMITS)


# While it trains ---------------------------------------------------------------------------


def test_nothing_to_do_between_heartbeats() -> None:
    decision = next_action(fresh(), Seen(now=T0 + 0.5), LIMITS)
    assert decision.action is Action.WAIT
    assert decision.watch == fresh()


def test_a_heartbeat_is_sent_once_due() -> None:
    assert next_action(fresh(), Seen(now=T0 + 1.0), LIMITS).action is Action.HEARTBEAT


@pytest.mark.parametrize("returncode", [EXIT_OK, EXIT_LOST_LEASE, EXIT_DRAINED, -9])
def test_a_job_that_ended_is_settled_whatever_else_was_seen(returncode: int) -> None:
    seen = Seen(now=T0 + 500, returncode=returncode, hurry=True, draining=True)
    decision = next_action(fresh(), seen, LIMITS)
    assert decision.action is Action.SETTLE
    assert decision.watch.returncode == returncode


def test_a_renewal_seen_as_the_job_ends_still_counts() -> None:
    heartbeat = Heartbeat(sent_at=T0 + 3, pulse=ALIVE)
    decision = next_action(fresh(), Seen(now=T0 + 3.1, returncode=-9, heartbeat=heartbeat), LIMITS)
    assert decision.action is Action.SETTLE
    assert decision.watch.renewed_at == T0 + 3


def test_the_shutdown_hurry_stops_the_training_as_drained() -> None:
    decision = next_action(fresh(), Seen(now=T0 + 0.1, draining=True, hurry=True), LIMITS)
    assert decision.action is Action.STOP
    assert decision.watch.stopped is Stopped.HURRIED
    assert decision.watch.drained


def test_a_drain_is_signalled_once() -> None:
    first = next_action(fresh(), Seen(now=T0 + 0.1, draining=True), LIMITS)
    assert first.action is Action.DRAIN
    assert first.watch.drained
    again = next_action(first.watch, Seen(now=T0 + 0.3, draining=True), LIMITS)
    assert again.action is Action.WAIT


def test_a_draining_training_still_gets_its_heartbeats() -> None:
    drained = replace(fresh(), drained=True)
    assert next_action(drained, Seen(now=T0 + 1.0, draining=True), LIMITS).action is (
        Action.HEARTBEAT
    )


# The heartbeat's answer --------------------------------------------------------------------


def test_a_renewal_counts_from_when_the_heartbeat_was_sent() -> None:
    decision = answered(ALIVE, sent_at=T0 + 1.0, now=T0 + 1.4)
    assert decision.action is Action.WAIT
    assert decision.retry_in is None
    assert decision.watch.renewed_at == T0 + 1.0
    assert decision.watch.next_heartbeat == T0 + 2.0


def test_a_training_that_wrote_its_outcome_is_let_finish() -> None:
    ended = Pulse(alive=False, cancel_requested=False, ended=True)
    decision = answered(ended, sent_at=T0 + 1, now=T0 + 1.1)
    assert decision.action is Action.LET_FINISH
    assert decision.watch.ended
    assert settlement(replace(decision.watch, returncode=EXIT_OK), LIMITS) is None


def test_a_lost_lease_stops_the_training_and_settles_nothing() -> None:
    lost = Pulse(alive=False, cancel_requested=False)
    decision = answered(lost, sent_at=T0 + 1, now=T0 + 1.1)
    assert decision.action is Action.STOP
    assert decision.watch.stopped is Stopped.LEASE_LOST
    assert settlement(replace(decision.watch, returncode=-9), LIMITS) is None


def test_a_cancel_is_signalled_once_then_killed_after_its_grace() -> None:
    cancel = Pulse(alive=True, cancel_requested=True)
    first = answered(cancel, sent_at=T0 + 1, now=T0 + 1.1)
    assert first.action is Action.CANCEL
    assert first.watch.cancel_signalled_at == T0 + 1.1
    again = answered(cancel, sent_at=T0 + 2, now=T0 + 2.1, watch=first.watch)
    assert again.action is Action.WAIT
    within = next_action(again.watch, Seen(now=T0 + 1.1 + 5.0), LIMITS)
    assert within.action is not Action.STOP
    past = next_action(again.watch, Seen(now=T0 + 1.1 + 5.01), LIMITS)
    assert past.action is Action.STOP
    assert past.watch.stopped is Stopped.CANCEL_GRACE
    assert settlement(replace(past.watch, returncode=-9), LIMITS) == Finish(Status.CANCELLED, None)


def test_an_answer_that_asks_nothing_lets_the_drain_through() -> None:
    heartbeat = Heartbeat(sent_at=T0 + 1, pulse=ALIVE)
    decision = next_action(fresh(), Seen(now=T0 + 1.1, draining=True, heartbeat=heartbeat), LIMITS)
    assert decision.action is Action.DRAIN
    assert decision.watch.renewed_at == T0 + 1  # the answer was not lost on the way


def test_failed_heartbeats_are_retried_with_backoff_up_to_the_interval() -> None:
    watch = fresh()
    delays = []
    for now in (T0 + 1.0, T0 + 1.3, T0 + 1.9, T0 + 2.95, T0 + 4.0):
        decision = answered(None, sent_at=now, now=now, watch=watch)
        assert decision.action is Action.WAIT
        assert decision.retry_in is not None
        assert decision.watch.next_heartbeat == now + decision.retry_in
        delays.append(decision.retry_in)
        watch = decision.watch
    assert delays == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert watch.renewed_at == T0  # no renewal meanwhile
    renewed = answered(ALIVE, sent_at=T0 + 4.5, now=T0 + 4.6, watch=watch)
    assert renewed.watch.failures == 0
    assert answered(None, sent_at=T0 + 6, now=T0 + 6, watch=renewed.watch).retry_in == 0.25


def test_the_training_is_stopped_a_heartbeat_before_its_lease_would_expire() -> None:
    # Renewed at T0; the lease runs to T0 + 6: the last failure allowed ends before T0 + 5.
    before = answered(None, sent_at=T0 + 4.8, now=T0 + 4.99)
    assert before.action is Action.WAIT
    at = answered(None, sent_at=T0 + 4.8, now=T0 + 5.0)
    assert at.action is Action.STOP
    assert at.watch.stopped is Stopped.LEASE_UNRENEWABLE
    assert at.watch.lost
    assert settlement(replace(at.watch, returncode=-9), LIMITS) is None


# The wall-time limit -----------------------------------------------------------------------


def test_the_wall_time_limit_stops_and_fails_the_training() -> None:
    assert next_action(fresh(), Seen(now=T0 + 99.9), LIMITS).action is Action.HEARTBEAT
    decision = next_action(fresh(), Seen(now=T0 + 100.1), LIMITS)
    assert decision.action is Action.STOP
    assert decision.watch.stopped is Stopped.WALL_TIME
    ending = settlement(replace(decision.watch, returncode=-9), LIMITS)
    assert isinstance(ending, Finish)
    assert ending.status is Status.FAILED
    assert ending.error is not None
    assert "100 s wall-time limit (MAX_TRAIN_SECONDS)" in ending.error


# Settling a job that wrote no outcome ------------------------------------------------------


@pytest.mark.parametrize(
    ("drained", "returncode", "charge", "reason"),
    [
        (True, EXIT_DRAINED, Charge.REFUND, "its worker shut down (exit code 4)"),
        (True, -signal.SIGKILL, Charge.REFUND, "its worker shut down (killed by SIGKILL)"),
        (False, -signal.SIGKILL, Charge.SPEND, "the training process died (killed by SIGKILL)"),
        (True, 1, Charge.SPEND, "the training process died (exit code 1)"),
        (False, EXIT_LOST_LEASE, Charge.SPEND, "the training process died (exit code 3)"),
        (False, EXIT_INFRASTRUCTURE, Charge.REFUND_IF_PROGRESSED, "infrastructure error"),
        (True, EXIT_INFRASTRUCTURE, Charge.REFUND_IF_PROGRESSED, "infrastructure error"),
    ],
)
def test_an_ending_nobody_wrote_is_a_release_charged_by_its_cause(
    drained: bool, returncode: int, charge: Charge, reason: str
) -> None:
    watch = replace(fresh(), drained=drained, returncode=returncode)
    ending = settlement(watch, LIMITS)
    assert isinstance(ending, Release)
    assert ending.charge is charge
    assert reason in ending.reason
