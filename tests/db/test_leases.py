"""The fenced worker-side transitions of service/db/leases.py, on a database Alembic migrated."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, update

from service.db import claims, leases, repository
from service.db.clock import database_now
from service.db.models import ExperimentRow
from service.db.session import Database
from service.domain import Claim, EpochRecord, Status, utcnow
from tests.factories import tiny_spec

LEASE_SECONDS = 60.0
LATER = timedelta(seconds=LEASE_SECONDS + 1)  # past any lease these tests hand out


def create(db: Database, *, max_attempts: int = 3) -> str:
    with db.scope() as session:
        experiment = repository.create_experiment(
            session,
            name="lease-test",
            description=None,
            spec=tiny_spec(),
            summary={},
            client_id="tests",
            max_attempts=max_attempts,
        )
    return experiment.id


def claim(db: Database, experiment_id: str, worker: str = "w1") -> Claim | None:
    with db.scope() as session:
        return claims.claim(
            session, experiment_id=experiment_id, worker=worker, lease_seconds=LEASE_SECONDS
        )


def claimed(db: Database, experiment_id: str, worker: str = "w1") -> Claim:
    taken = claim(db, experiment_id, worker)
    assert taken is not None
    return taken


def sweep(db: Database, *, after: timedelta = LATER) -> leases.SweepResult:
    with db.scope() as session:
        return leases.sweep(session, now=utcnow() + after)


def record(epoch: int, attempt: int = 1, loss: float = 1.0) -> EpochRecord:
    return EpochRecord(
        epoch=epoch,
        loss=loss,
        accuracy=0.5,
        val_loss=loss,
        val_accuracy=0.5,
        seconds=0.1,
        attempt=attempt,
    )


def record_epoch(db: Database, taken: Claim, epoch: EpochRecord) -> leases.Pulse:
    with db.scope() as session:
        return leases.record_epoch(
            session,
            experiment_id=taken.experiment_id,
            attempt=taken.attempt,
            record=epoch,
            lease_seconds=LEASE_SECONDS,
        )


def heartbeat(db: Database, taken: Claim, lease_seconds: float = LEASE_SECONDS) -> leases.Pulse:
    with db.scope() as session:
        return leases.heartbeat(
            session,
            experiment_id=taken.experiment_id,
            attempt=taken.attempt,
            lease_seconds=lease_seconds,
        )


def request_cancel(db: Database, experiment_id: str) -> None:
    with db.scope() as session:
        repository.request_cancel(session, experiment_id)


def row(db: Database, experiment_id: str) -> dict[str, Any]:
    """Every column of the experiment row, as stored."""
    with db.scope() as session:
        found = session.get(ExperimentRow, experiment_id)
        assert found is not None
        return {column.key: getattr(found, column.key) for column in ExperimentRow.__table__.c}


def epochs(db: Database, experiment_id: str) -> list[EpochRecord]:
    with db.scope() as session:
        return repository.history(session, experiment_id)[1]


def outcomes(db: Database, experiment_id: str) -> list[tuple[int, str | None]]:
    with db.scope() as session:
        return [(a.number, a.outcome) for a in repository.attempts(session, experiment_id)]


def everything(db: Database, experiment_id: str) -> tuple[Any, ...]:
    with db.scope() as session:
        attempts = repository.attempts(session, experiment_id)
    return row(db, experiment_id), epochs(db, experiment_id), attempts


def lease_expiry(db: Database, experiment_id: str) -> datetime:
    expires = row(db, experiment_id)["lease_expires_at"]
    assert isinstance(expires, datetime)
    return expires


# Claims ------------------------------------------------------------------------------------


def test_claim_takes_a_queued_experiment_for_attempt_one(db: Database) -> None:
    experiment_id = create(db)
    with db.scope() as session:
        before = database_now(session)  # what leases read (SQLite's counts milliseconds)
    taken = claimed(db, experiment_id, worker="w1")
    assert (taken.experiment_id, taken.attempt, taken.worker, taken.start_epoch) == (
        experiment_id,
        1,
        "w1",
        0,
    )
    assert taken.spec == tiny_spec()
    stored = row(db, experiment_id)
    assert stored["status"] == Status.RUNNING
    assert stored["attempt"] == 1
    assert stored["lease_owner"] == "w1"
    assert stored["started_at"] >= before
    expected = before + timedelta(seconds=LEASE_SECONDS)
    assert expected <= stored["lease_expires_at"] <= expected + timedelta(seconds=30)
    assert outcomes(db, experiment_id) == [(1, None)]


def test_second_claim_of_the_same_row_fails(db: Database) -> None:
    experiment_id = create(db)
    claimed(db, experiment_id, worker="w1")
    before = row(db, experiment_id)
    assert claim(db, experiment_id, worker="w2") is None
    assert row(db, experiment_id) == before
    assert outcomes(db, experiment_id) == [(1, None)]


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED])
def test_claim_refuses_a_finished_experiment(db: Database, status: Status) -> None:
    experiment_id = create(db)
    with db.scope() as session:
        session.execute(
            update(ExperimentRow).where(ExperimentRow.id == experiment_id).values(status=status)
        )
    assert claim(db, experiment_id) is None
    assert row(db, experiment_id)["attempt"] == 0


def test_claim_refuses_a_queued_experiment_with_cancel_requested(db: Database) -> None:
    experiment_id = create(db)
    with db.scope() as session:
        session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.id == experiment_id)
            .values(cancel_requested=True)
        )
    assert claim(db, experiment_id) is None


def test_claim_of_unknown_experiment_is_none(db: Database) -> None:
    assert claim(db, "nope") is None


def test_reclaim_resumes_after_the_last_recorded_epoch(db: Database) -> None:
    experiment_id = create(db)
    first = claimed(db, experiment_id)
    for epoch in (1, 2):
        assert record_epoch(db, first, record(epoch)).alive
    assert sweep(db).requeued == [experiment_id]
    second = claimed(db, experiment_id, worker="w2")
    assert (second.attempt, second.start_epoch) == (2, 2)
    assert row(db, experiment_id)["lease_owner"] == "w2"


# Heartbeats --------------------------------------------------------------------------------


def test_heartbeat_extends_the_lease(db: Database) -> None:
    experiment_id = create(db)
    taken = claimed(db, experiment_id)
    first = lease_expiry(db, experiment_id)
    assert heartbeat(db, taken, lease_seconds=LEASE_SECONDS * 10) == leases.Pulse(
        alive=True, cancel_requested=False
    )
    assert lease_expiry(db, experiment_id) >= first + timedelta(seconds=LEASE_SECONDS * 8)


def test_heartbeat_reports_a_cancel_request(db: Database) -> None:
    experiment_id = create(db)
    taken = claimed(db, experiment_id)
    request_cancel(db, experiment_id)
    assert heartbeat(db, taken) == leases.Pulse(alive=True, cancel_requested=True)
    assert record_epoch(db, taken, record(1)) == leases.Pulse(alive=True, cancel_requested=True)
    assert row(db, experiment_id)["status"] == Status.RUNNING  # the worker stops it


# Fencing: a stale attempt cannot write -------------------------------------------------------


def stale_writes(db: Database, stale: Claim) -> dict[str, bool]:
    """Try every worker write as `stale`; map each to whether it claimed to have landed."""
    key = {"experiment_id": stale.experiment_id, "attempt": stale.attempt}
    landed = {}
    with db.scope() as session:
        landed["heartbeat"] = leases.heartbeat(session, **key, lease_seconds=LEASE_SECONDS).alive
    with db.scope() as session:
        landed["record_epoch"] = leases.record_epoch(
            session, **key, record=record(1, stale.attempt, loss=9.0), lease_seconds=LEASE_SECONDS
        ).alive
    with db.scope() as session:
        landed["begin_epochs"] = leases.begin_epochs(session, **key, start_epoch=0, restored=[])
    with db.scope() as session:
        landed["succeed"] = leases.succeed(
            session,
            **key,
            test_loss=0.1,
            test_accuracy=0.9,
            model_uri="stale://model",
            versions={"tensorflow": "0", "keras": "0"},
        )
    with db.scope() as session:
        landed["finish"] = leases.finish(session, **key, status=Status.FAILED, error="stale")
    with db.scope() as session:
        landed["release"] = leases.release(session, **key, reason="stale") is not None
    with db.scope() as session:
        landed["spec_if_owned"] = leases.spec_if_owned(session, **key) is not None
    return landed


def test_stale_attempt_cannot_write_after_a_new_claim(db: Database) -> None:
    experiment_id = create(db)
    stale = claimed(db, experiment_id, worker="w1")
    assert record_epoch(db, stale, record(1, attempt=1)).alive
    assert sweep(db).requeued == [experiment_id]
    current = claimed(db, experiment_id, worker="w2")
    assert current.attempt == 2
    assert record_epoch(db, current, record(2, attempt=2)).alive
    before = everything(db, experiment_id)
    assert stale_writes(db, stale) == dict.fromkeys(
        [
            "heartbeat",
            "record_epoch",
            "begin_epochs",
            "succeed",
            "finish",
            "release",
            "spec_if_owned",
        ],
        False,
    )
    assert everything(db, experiment_id) == before
    assert heartbeat(db, current).alive  # the current attempt still owns it


def test_stale_attempt_cannot_write_while_requeued(db: Database) -> None:
    experiment_id = create(db)
    stale = claimed(db, experiment_id)
    assert sweep(db).requeued == [experiment_id]
    before = everything(db, experiment_id)
    assert not any(stale_writes(db, stale).values())
    assert everything(db, experiment_id) == before
    assert row(db, experiment_id)["status"] == Status.QUEUED


def test_attempt_that_finished_cannot_write_again(db: Database) -> None:
    experiment_id = create(db)
    taken = claimed(db, experiment_id)
    with db.scope() as session:
        assert leases.finish(
            session,
            experiment_id=experiment_id,
            attempt=taken.attempt,
            status=Status.CANCELLED,
            error=None,
        )
    before = everything(db, experiment_id)
    assert not any(stale_writes(db, taken).values())
    assert everything(db, experiment_id) == before


# Endings ---------------------------------------------------------------------------------


def test_succeed_stores_scores_and_model(db: Database) -> None:
    experiment_id = create(db)
    taken = claimed(db, experiment_id)
    with db.scope() as session:
        assert leases.succeed(
            session,
            experiment_id=experiment_id,
            attempt=taken.attempt,
            test_loss=0.25,
            test_accuracy=0.93,
            model_uri="models/x",
            versions={"tensorflow": "2.19.0", "keras": "3.9.0"},
        )
    stored = row(db, experiment_id)
    assert stored["status"] == Status.SUCCEEDED
    assert (stored["test_loss"], stored["test_accuracy"]) == (0.25, 0.93)
    assert (stored["model_uri"], stored["tf_version"], stored["keras_version"]) == (
        "models/x",
        "2.19.0",
        "3.9.0",
    )
    assert stored["finished_at"] is not None
    assert stored["lease_expires_at"] is None
    assert outcomes(db, experiment_id) == [(1, "succeeded")]


def test_finish_records_the_error_on_row_and_attempt(db: Database) -> None:
    experiment_id = create(db)
    taken = claimed(db, experiment_id)
    with db.scope() as session:
        assert leases.finish(
            session,
            experiment_id=experiment_id,
            attempt=taken.attempt,
            status=Status.FAILED,
            error="loss became NaN",
        )
    stored = row(db, experiment_id)
    assert (stored["status"], stored["error"]) == (Status.FAILED, "loss became NaN")
    assert stored["finished_at"] is not None
    assert outcomes(db, experiment_id) == [(1, "failed: loss became NaN")]


# Sweep -------------------------------------------------------------------------------------


def test_sweep_leaves_live_leases_alone(db: Database) -> None:
    experiment_id = create(db)
    claimed(db, experiment_id)
    before = row(db, experiment_id)
    assert sweep(db, after=timedelta(0)) == leases.SweepResult([], [], [])
    assert row(db, experiment_id) == before


def test_sweep_requeues_an_expired_lease_while_attempts_remain(db: Database) -> None:
    experiment_id = create(db, max_attempts=2)
    claimed(db, experiment_id, worker="w1")
    assert sweep(db) == leases.SweepResult(requeued=[experiment_id], failed=[], cancelled=[])
    stored = row(db, experiment_id)
    assert stored["status"] == Status.QUEUED
    assert (stored["lease_owner"], stored["lease_expires_at"], stored["finished_at"]) == (
        None,
        None,
        None,
    )
    assert stored["error"] is None
    [(number, outcome)] = outcomes(db, experiment_id)
    assert number == 1
    assert outcome is not None
    assert outcome.startswith("lost: worker w1 stopped renewing its lease")


def test_sweep_fails_an_expired_lease_when_attempts_are_spent(db: Database) -> None:
    experiment_id = create(db, max_attempts=2)
    for worker in ("w1", "w2"):
        claimed(db, experiment_id, worker=worker)
        result = sweep(db)
    assert result == leases.SweepResult(requeued=[], failed=[experiment_id], cancelled=[])
    stored = row(db, experiment_id)
    assert stored["status"] == Status.FAILED
    assert stored["finished_at"] is not None
    assert "gave up after 2 attempts" in stored["error"]
    assert "worker w2" in stored["error"]
    assert [number for number, _ in outcomes(db, experiment_id)] == [1, 2]
    assert claim(db, experiment_id) is None


def test_sweep_cancels_an_expired_lease_with_cancel_requested(db: Database) -> None:
    experiment_id = create(db)
    claimed(db, experiment_id)
    request_cancel(db, experiment_id)
    assert sweep(db) == leases.SweepResult(requeued=[], failed=[], cancelled=[experiment_id])
    stored = row(db, experiment_id)
    assert stored["status"] == Status.CANCELLED
    assert stored["finished_at"] is not None


# The decision on a lost attempt ------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "max_attempts", "cancel_requested", "expected"),
    [
        (1, 3, False, leases.LossDecision(Status.QUEUED)),
        (3, 3, False, leases.LossDecision(Status.FAILED, "died; gave up after 3 attempts")),
        (1, 3, True, leases.LossDecision(Status.CANCELLED)),
        (3, 3, True, leases.LossDecision(Status.CANCELLED)),
    ],
)
def test_a_lost_attempt_is_cancelled_if_asked_else_requeued_while_attempts_remain(
    attempt: int, max_attempts: int, cancel_requested: bool, expected: leases.LossDecision
) -> None:
    decision = leases.decide_after_loss(
        attempt=attempt, max_attempts=max_attempts, cancel_requested=cancel_requested, reason="died"
    )
    assert decision == expected


# Release -----------------------------------------------------------------------------------


def release(db: Database, taken: Claim, reason: str = "exit code -9") -> Status | None:
    with db.scope() as session:
        return leases.release(
            session, experiment_id=taken.experiment_id, attempt=taken.attempt, reason=reason
        )


def test_release_requeues_while_attempts_remain(db: Database) -> None:
    experiment_id = create(db, max_attempts=2)
    assert release(db, claimed(db, experiment_id)) is Status.QUEUED
    stored = row(db, experiment_id)
    assert (stored["status"], stored["lease_owner"], stored["finished_at"]) == (
        Status.QUEUED,
        None,
        None,
    )
    assert outcomes(db, experiment_id) == [(1, "lost: exit code -9")]
    assert claimed(db, experiment_id).attempt == 2


def test_release_fails_when_attempts_are_spent(db: Database) -> None:
    experiment_id = create(db, max_attempts=1)
    assert release(db, claimed(db, experiment_id)) is Status.FAILED
    stored = row(db, experiment_id)
    assert stored["status"] == Status.FAILED
    assert stored["error"] == "exit code -9; gave up after 1 attempts"
    assert stored["finished_at"] is not None


def test_release_cancels_when_cancel_was_requested(db: Database) -> None:
    experiment_id = create(db)
    taken = claimed(db, experiment_id)
    request_cancel(db, experiment_id)
    assert release(db, taken) is Status.CANCELLED
    assert row(db, experiment_id)["status"] == Status.CANCELLED


# History -----------------------------------------------------------------------------------


def test_record_epoch_replaces_the_same_epoch_and_drops_later_ones(db: Database) -> None:
    experiment_id = create(db)
    taken = claimed(db, experiment_id)
    for epoch in (1, 2, 3):
        assert record_epoch(db, taken, record(epoch, loss=float(epoch))).alive
    redo = record(2, loss=0.5)
    assert record_epoch(db, taken, redo).alive
    assert epochs(db, experiment_id) == [record(1, loss=1.0), redo]


def test_record_epoch_renews_the_lease(db: Database) -> None:
    experiment_id = create(db)
    taken = claimed(db, experiment_id)
    with db.scope() as session:
        session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.id == experiment_id)
            .values(lease_expires_at=utcnow())
        )
    assert record_epoch(db, taken, record(1)).alive
    assert lease_expiry(db, experiment_id) > utcnow() + timedelta(seconds=LEASE_SECONDS / 2)


def test_begin_epochs_rewrites_history_to_the_restored_one(db: Database) -> None:
    experiment_id = create(db)
    first = claimed(db, experiment_id)
    for epoch in (1, 2, 3):
        assert record_epoch(db, first, record(epoch, attempt=1)).alive
    assert sweep(db).requeued == [experiment_id]
    second = claimed(db, experiment_id)
    assert second.start_epoch == 3
    # The checkpoint only got as far as epoch 2, with slightly different numbers.
    restored = [replace(record(epoch, attempt=1), loss=epoch / 10) for epoch in (1, 2, 3)]
    with db.scope() as session:
        assert leases.begin_epochs(
            session,
            experiment_id=experiment_id,
            attempt=second.attempt,
            start_epoch=2,
            restored=restored,
        )
    assert epochs(db, experiment_id) == restored[:2]
    with db.scope() as session:
        attempts = repository.attempts(session, experiment_id)
    assert [(a.number, a.start_epoch) for a in attempts] == [(1, 0), (2, 2)]


def test_begin_epochs_from_scratch_clears_the_history(db: Database) -> None:
    experiment_id = create(db)
    first = claimed(db, experiment_id)
    assert record_epoch(db, first, record(1)).alive
    with db.scope() as session:
        assert leases.begin_epochs(
            session, experiment_id=experiment_id, attempt=first.attempt, start_epoch=0, restored=[]
        )
    assert epochs(db, experiment_id) == []


def test_a_queued_row_made_for_tests_is_made_as_a_submitted_one_is(db: Database) -> None:
    """One constructor (`models.queued_experiment`): delivered_at is set here too."""
    experiment_id = create(db)
    with db.scope() as session:
        row = session.get(ExperimentRow, experiment_id)
        assert row is not None
        assert (row.status, row.attempt, row.cancel_requested) == ("queued", 0, False)
        assert row.delivered_at == row.created_at


# Races with a user's cancel ------------------------------------------------------------------
# Each test reads the row into a session first, as the real code does before it writes, then
# lets the other side commit in between: the write must act on the row as it is now.


def test_release_honours_a_cancel_requested_after_the_row_was_read(db: Database) -> None:
    experiment_id = create(db)
    taken = claimed(db, experiment_id)
    with db.scope() as session:
        seen = session.get(ExperimentRow, experiment_id)  # kept, or the session forgets it
        assert seen is not None
        request_cancel(db, experiment_id)
        status = leases.release(
            session, experiment_id=experiment_id, attempt=taken.attempt, reason="exit code -9"
        )
    assert status is Status.CANCELLED
    assert row(db, experiment_id)["status"] == Status.CANCELLED


def test_cancel_of_an_experiment_claimed_meanwhile_reaches_its_worker(db: Database) -> None:
    experiment_id = create(db)
    with db.scope() as session:
        seen = session.get(ExperimentRow, experiment_id)
        assert seen is not None
        taken = claimed(db, experiment_id)
        cancelled = repository.request_cancel(session, experiment_id)
    assert cancelled.status is Status.RUNNING
    assert cancelled.cancel_requested
    assert heartbeat(db, taken) == leases.Pulse(alive=True, cancel_requested=True)


def test_sweep_honours_a_cancel_requested_after_it_looked(db: Database) -> None:
    experiment_id = create(db)
    claimed(db, experiment_id)
    cancelled_in_between: list[str] = []

    def cancel_before_the_sweep_writes(
        _connection: Any, _cursor: Any, statement: str, *_args: Any
    ) -> None:
        if statement.lstrip().upper().startswith("UPDATE") and not cancelled_in_between:
            cancelled_in_between.append(experiment_id)
            request_cancel(db, experiment_id)

    event.listen(db.engine, "before_cursor_execute", cancel_before_the_sweep_writes)
    try:
        first = sweep(db)
    finally:
        event.remove(db.engine, "before_cursor_execute", cancel_before_the_sweep_writes)
    assert cancelled_in_between == [experiment_id]
    assert experiment_id not in first.requeued  # it would never be claimed again
    if experiment_id not in first.cancelled:  # skipped this round, the next one takes it
        assert sweep(db).cancelled == [experiment_id]
    assert row(db, experiment_id)["status"] == Status.CANCELLED


@pytest.mark.parametrize("loss", [math.nan, math.inf], ids=["nan", "inf"])
def test_a_diverged_epoch_is_recorded(db: Database, loss: float) -> None:
    """The worker records the epoch whose loss blew up, then fails the experiment saying so."""
    experiment_id = create(db)
    taken = claimed(db, experiment_id)
    assert record_epoch(db, taken, record(1, loss=0.7)).alive
    diverged = replace(record(2), loss=loss)
    assert record_epoch(db, taken, diverged).alive
    first, second = epochs(db, experiment_id)
    assert first == record(1, loss=0.7)
    assert math.isnan(second.loss)  # not a number, whatever the backend stores
    assert replace(second, loss=0.0) == replace(diverged, loss=0.0)
