"""Leases under infrastructure faults: the database's clock decides, and a release that is not
the job's fault (a worker shutting down, an infrastructure error after progress) is free."""

from __future__ import annotations

from datetime import UTC, timedelta

from service.db import leases, repository
from service.db.clock import database_now
from service.db.session import Database
from service.domain import EpochRecord, Status, utcnow
from tests.helpers import claim_in, create_queued

LEASE_SECONDS = 60.0


def release(db: Database, experiment_id: str, attempt: int, charge: leases.Charge) -> Status | None:
    with db.scope() as session:
        return leases.release(
            session, experiment_id=experiment_id, attempt=attempt, reason="test", charge=charge
        )


def budget(db: Database, experiment_id: str) -> tuple[str, int, int]:
    with db.scope() as session:
        experiment = repository.get_experiment(session, experiment_id)
    return experiment.status.value, experiment.attempt, experiment.max_attempts


def test_database_now_is_the_databases_utc_clock(db: Database) -> None:
    with db.scope() as session:
        now = database_now(session)
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
    assert abs(now - utcnow()) < timedelta(seconds=5)  # one machine here: the clocks agree
    assert now.astimezone(UTC) == now


def test_refunded_release_requeues_with_the_same_budget(db: Database) -> None:
    experiment_id = create_queued(db, max_attempts=1)
    attempt = claim_in(db, experiment_id)
    # On the last attempt: a spent release would fail the job; a refunded one requeues it.
    assert release(db, experiment_id, attempt, leases.Charge.REFUND) is Status.QUEUED
    assert budget(db, experiment_id) == ("queued", 1, 2)
    again = claim_in(db, experiment_id)
    assert again == 2  # the fencing token still grows
    with db.scope() as session:
        attempts = repository.attempts(session, experiment_id)
    assert attempts[0].outcome == "released: test"


def test_infrastructure_release_is_free_only_after_progress(db: Database) -> None:
    experiment_id = create_queued(db, max_attempts=2)
    first = claim_in(db, experiment_id)
    charge = leases.Charge.REFUND_IF_PROGRESSED
    # No epoch recorded by this attempt: it counts, so a fault that recurs at once ends the job.
    assert release(db, experiment_id, first, charge) is Status.QUEUED
    assert budget(db, experiment_id) == ("queued", 1, 2)
    second = claim_in(db, experiment_id)
    with db.scope() as session:
        leases.record_epoch(
            session,
            experiment_id=experiment_id,
            attempt=second,
            record=EpochRecord(
                epoch=1,
                loss=1.0,
                accuracy=0.5,
                val_loss=1.0,
                val_accuracy=0.5,
                seconds=1.0,
                attempt=second,
            ),
            lease_seconds=LEASE_SECONDS,
        )
    # The last attempt, but it made progress: requeued for free.
    assert release(db, experiment_id, second, charge) is Status.QUEUED
    assert budget(db, experiment_id) == ("queued", 2, 3)
    third = claim_in(db, experiment_id)
    assert release(db, experiment_id, third, charge) is Status.FAILED
