"""Worker-side state transitions, each fenced by the attempt number a claim (`service.db.claims`)
handed out.

A write from a stale attempt (an old process that wakes up after its lease was swept) matches no
row and is dropped: the fencing update also takes the row's write lock, so a sweep and a stale
write cannot interleave inside one transaction. Every lease time is the database's clock
(`database_now`), never the clock of the process that happens to run the comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, delete, select, update
from sqlalchemy.orm import Session

from service.db import challenges
from service.db.clock import database_now
from service.db.models import VERSION_COLUMNS, AttemptRow, EpochRow, ExperimentRow
from service.domain import EpochRecord, Status


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


@dataclass(frozen=True)
class Pulse:
    """What a heartbeat learns: whether the lease is still ours, and whether to stop."""

    alive: bool
    cancel_requested: bool
    ended: bool = False
    """Not alive because the experiment finished on this very attempt (normally its training
    wrote the outcome and is exiting), not because another attempt took it over."""


class Charge(Enum):
    """Whether an attempt given up counts against the experiment's MAX_ATTEMPTS."""

    SPEND = "spend"
    """The training died or its worker vanished: the attempt counts."""
    REFUND = "refund"
    """The worker shut down on request (a rolling restart): not the job's doing, it is free."""
    REFUND_IF_PROGRESSED = "refund_if_progressed"
    """An infrastructure error (database, store): free when this attempt recorded an epoch, so
    a blip never fails a job, yet a fault that recurs before any progress still ends it."""


@dataclass(frozen=True)
class LossDecision:
    """What becomes of an experiment whose attempt was lost: requeued, failed or cancelled."""

    status: Status
    error: str | None = None
    refunded: bool = False
    """Requeued without spending the attempt: MAX_ATTEMPTS grows by one, as the attempt number
    (the fencing token) must still grow."""


def decide_after_loss(
    *,
    attempt: int,
    max_attempts: int,
    cancel_requested: bool,
    reason: str,
    refunded: bool = False,
) -> LossDecision:
    """A requested cancel wins; a refunded attempt is requeued; otherwise requeue while attempts
    remain, else fail saying why.

    The one rule for the sweep (lease expired) and `release` (training process died, or its
    worker shut down).
    """
    if cancel_requested:
        return LossDecision(Status.CANCELLED)
    if refunded:
        return LossDecision(Status.QUEUED, refunded=True)
    if attempt < max_attempts:
        return LossDecision(Status.QUEUED)
    return LossDecision(Status.FAILED, f"{reason}; gave up after {attempt} attempts")


@dataclass(frozen=True)
class SweepResult:
    requeued: list[str]
    failed: list[str]
    cancelled: list[str]


def _running_on(experiment_id: str, attempt: int) -> tuple[ColumnElement[bool], ...]:
    """The rows `attempt` still owns: the experiment, running, on that attempt."""
    return (
        ExperimentRow.id == experiment_id,
        ExperimentRow.attempt == attempt,
        ExperimentRow.status == Status.RUNNING,
    )


def _fence(
    session: Session, experiment_id: str, attempt: int, lease_seconds: float | None = None
) -> bool:
    """Lock the experiment row if `attempt` still owns it; extend the lease when asked."""
    values: dict[str, object] = {"attempt": attempt}
    if lease_seconds is not None:
        values["lease_expires_at"] = database_now(session) + timedelta(seconds=lease_seconds)
    result = session.execute(
        update(ExperimentRow).where(*_running_on(experiment_id, attempt)).values(**values)
    )
    return _rowcount(result) == 1


def holds(session: Session, *, experiment_id: str, attempt: int) -> bool:
    """Whether `attempt` still owns the experiment, holding its row lock until the session ends:
    a store write made inside the same scope cannot race a sweep or a newer claim."""
    return _fence(session, experiment_id, attempt)


def _alive(session: Session, experiment_id: str) -> Pulse:
    """The pulse of an attempt whose fence just held: read the cancel flag under its lock."""
    cancel = session.scalar(
        select(ExperimentRow.cancel_requested).where(ExperimentRow.id == experiment_id)
    )
    return Pulse(alive=True, cancel_requested=bool(cancel))


def heartbeat(session: Session, *, experiment_id: str, attempt: int, lease_seconds: float) -> Pulse:
    if not _fence(session, experiment_id, attempt, lease_seconds):
        return Pulse(
            alive=False, cancel_requested=False, ended=_ended_on(session, experiment_id, attempt)
        )
    return _alive(session, experiment_id)


def _ended_on(session: Session, experiment_id: str, attempt: int) -> bool:
    row = session.execute(
        select(ExperimentRow.status, ExperimentRow.attempt).where(ExperimentRow.id == experiment_id)
    ).one_or_none()
    return row is not None and row.attempt == attempt and Status(row.status).is_finished


def begin_epochs(
    session: Session,
    *,
    experiment_id: str,
    attempt: int,
    start_epoch: int,
    restored: list[EpochRecord],
) -> bool:
    """Make the history match the checkpoint this attempt resumes from: no gap, no duplicate."""
    if not _fence(session, experiment_id, attempt):
        return False
    session.execute(delete(EpochRow).where(EpochRow.experiment_id == experiment_id))
    for record in restored[:start_epoch]:
        session.add(_epoch_row(session, experiment_id, record))
    session.execute(
        update(AttemptRow)
        .where(AttemptRow.experiment_id == experiment_id, AttemptRow.number == attempt)
        .values(start_epoch=start_epoch)
    )
    return True


def _epoch_row(session: Session, experiment_id: str, record: EpochRecord) -> EpochRow:
    return EpochRow(
        experiment_id=experiment_id,
        epoch=record.epoch,
        loss=record.loss if math.isfinite(record.loss) else None,
        accuracy=record.accuracy,
        val_loss=record.val_loss,
        val_accuracy=record.val_accuracy,
        seconds=record.seconds,
        attempt=record.attempt,
        learning_rate=record.learning_rate,
        recorded_at=database_now(session),
    )


def record_epoch(
    session: Session,
    *,
    experiment_id: str,
    attempt: int,
    record: EpochRecord,
    lease_seconds: float,
) -> Pulse:
    """Store one finished epoch (replacing any stale copy) and renew the lease."""
    if not _fence(session, experiment_id, attempt, lease_seconds):
        return Pulse(alive=False, cancel_requested=False)
    session.execute(
        delete(EpochRow).where(
            EpochRow.experiment_id == experiment_id, EpochRow.epoch >= record.epoch
        )
    )
    session.add(_epoch_row(session, experiment_id, record))
    return _alive(session, experiment_id)


def succeed(
    session: Session,
    *,
    experiment_id: str,
    attempt: int,
    test_loss: float,
    test_accuracy: float,
    model_uri: str,
    versions: dict[str, str],
) -> bool:
    """End the attempt as succeeded. An entry of an open challenge keeps its full test scores
    sealed beside the entry, never on the experiment (where lists, events and `best` would
    show them), until the challenge closes."""
    sealed = challenges.is_sealed(session, experiment_id, now=database_now(session))
    closed = _close(
        session,
        experiment_id,
        attempt,
        outcome="succeeded",
        status=Status.SUCCEEDED,
        test_loss=None if sealed else test_loss,
        test_accuracy=None if sealed else test_accuracy,
        model_uri=model_uri,
        **{column: versions.get(name) for name, column in VERSION_COLUMNS.items()},
        error=None,
    )
    if closed and sealed:
        challenges.seal_scores(
            session, experiment_id, test_loss=test_loss, test_accuracy=test_accuracy
        )
    return closed


def finish(
    session: Session, *, experiment_id: str, attempt: int, status: Status, error: str | None
) -> bool:
    """End an attempt as failed or cancelled."""
    outcome = f"{status.value}: {error}" if error else status.value
    return _close(session, experiment_id, attempt, outcome=outcome, status=status, error=error)


def _close(
    session: Session, experiment_id: str, attempt: int, *, outcome: str, **values: object
) -> bool:
    """Give the experiment its final values and end the attempt, if the attempt still owns it."""
    if not _fence(session, experiment_id, attempt):
        return False
    now = database_now(session)
    session.execute(
        update(ExperimentRow)
        .where(ExperimentRow.id == experiment_id)
        .values(**values, finished_at=now, lease_expires_at=None)
    )
    _end_attempt(session, experiment_id, attempt, outcome, now)
    return True


def _end_attempt(
    session: Session, experiment_id: str, attempt: int, outcome: str, now: datetime
) -> None:
    session.execute(
        update(AttemptRow)
        .where(AttemptRow.experiment_id == experiment_id, AttemptRow.number == attempt)
        .values(ended_at=now, outcome=outcome)
    )


def sweep(session: Session, *, now: datetime | None = None) -> SweepResult:
    """Requeue running experiments whose lease expired while attempts remain; fail the rest."""
    now = now or database_now(session)
    expired = session.execute(
        select(
            ExperimentRow.id,
            ExperimentRow.attempt,
            ExperimentRow.max_attempts,
            ExperimentRow.cancel_requested,
            ExperimentRow.lease_owner,
        ).where(ExperimentRow.status == Status.RUNNING, ExperimentRow.lease_expires_at < now)
    ).all()
    result = SweepResult(requeued=[], failed=[], cancelled=[])
    buckets = {
        Status.QUEUED: result.requeued,
        Status.FAILED: result.failed,
        Status.CANCELLED: result.cancelled,
    }
    for experiment_id, attempt, max_attempts, cancel_requested, owner in expired:
        lost = f"worker {owner} stopped renewing its lease (attempt {attempt})"
        decision = decide_after_loss(
            attempt=attempt,
            max_attempts=max_attempts,
            cancel_requested=cancel_requested,
            reason=lost,
        )
        if _end_lost(
            session,
            experiment_id,
            attempt,
            decision,
            reason=lost,
            now=now,
            # A cancel since the select changes the verdict; the next sweep takes it.
            unchanged=(
                ExperimentRow.lease_expires_at < now,
                ExperimentRow.cancel_requested == cancel_requested,
            ),
        ):
            buckets[decision.status].append(experiment_id)
    return result


def release(
    session: Session,
    *,
    experiment_id: str,
    attempt: int,
    reason: str,
    charge: Charge = Charge.SPEND,
) -> Status | None:
    """Give up an attempt whose training process stopped: requeue while attempts remain (or
    for free, as `charge` says).

    Returns the new status, or None when the attempt no longer owned the experiment.
    """
    if not _fence(session, experiment_id, attempt):
        return None
    # Read only now that the fence holds the row's lock: a cancel that landed since anything
    # read the row must win, or the experiment is requeued flagged, and a claim refuses those.
    row = session.get(ExperimentRow, experiment_id, populate_existing=True)
    assert row is not None
    decision = decide_after_loss(
        attempt=attempt,
        max_attempts=row.max_attempts,
        cancel_requested=row.cancel_requested,
        reason=reason,
        refunded=charge is Charge.REFUND
        or (charge is Charge.REFUND_IF_PROGRESSED and _progressed(session, experiment_id, attempt)),
    )
    _end_lost(session, experiment_id, attempt, decision, reason=reason, now=database_now(session))
    return decision.status


def _progressed(session: Session, experiment_id: str, attempt: int) -> bool:
    """Whether `attempt` recorded at least one epoch of its own."""
    return (
        session.scalar(
            select(EpochRow.epoch)
            .where(EpochRow.experiment_id == experiment_id, EpochRow.attempt == attempt)
            .limit(1)
        )
        is not None
    )


def _end_lost(
    session: Session,
    experiment_id: str,
    attempt: int,
    decision: LossDecision,
    *,
    reason: str,
    now: datetime,
    unchanged: tuple[ColumnElement[bool], ...] = (),
) -> bool:
    """Apply `decision` to a lost attempt that still owns the row (and whatever `unchanged` says
    the decision was made on); end the attempt. False when the row moved on meanwhile."""
    changed = session.execute(
        update(ExperimentRow)
        .where(*_running_on(experiment_id, attempt), *unchanged)
        .values(
            status=decision.status,
            error=decision.error,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=None if decision.status is Status.QUEUED else now,
            max_attempts=ExperimentRow.max_attempts + int(decision.refunded),
        )
    )
    if _rowcount(changed) != 1:
        return False
    ending = "released" if decision.refunded else "lost"
    _end_attempt(session, experiment_id, attempt, f"{ending}: {reason}", now)
    return True


def spec_if_owned(session: Session, *, experiment_id: str, attempt: int) -> dict[str, Any] | None:
    row = session.get(ExperimentRow, experiment_id)
    if row is None or row.attempt != attempt or row.status != Status.RUNNING:
        return None
    return row.spec
