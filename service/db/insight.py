"""Evaluations and layer health in the database; rows become insight objects before leaving.

The training process writes both inside the transaction whose attempt fence held (the epoch's
`leases.record_epoch`, the outcome's `leases.succeed`), so a stale attempt writes neither.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db.models import EpochRow, EvaluationRow, LayerStatsRow
from service.domain import utcnow
from service.insight.evaluation import Evaluation
from service.insight.layers import EpochLayers, LayerStats


class EvaluationStatus(enum.StrEnum):
    PENDING = "pending"
    """Asked for; a worker has been sent to compute it."""
    READY = "ready"
    FAILED = "failed"
    """The worker could not compute it; `error` says why."""


@dataclass(frozen=True)
class EvaluationState:
    status: EvaluationStatus
    requested_at: datetime
    evaluation: Evaluation | None
    error: str | None


def record_layer_stats(
    session: Session, *, experiment_id: str, attempt: int, epoch: int, layers: list[LayerStats]
) -> None:
    """Store one epoch's layer health (replacing any stale copy); call after the fence held."""
    session.execute(
        delete(LayerStatsRow).where(
            LayerStatsRow.experiment_id == experiment_id, LayerStatsRow.epoch >= epoch
        )
    )
    session.add(
        LayerStatsRow(
            experiment_id=experiment_id,
            epoch=epoch,
            attempt=attempt,
            layers=[layer.to_json() for layer in layers],
        )
    )


def layer_history(session: Session, experiment_id: str) -> list[EpochLayers]:
    """Layer health of every recorded epoch, in order.

    Only epochs the history holds: a dead attempt may have measured an epoch it never recorded.
    """
    rows = session.scalars(
        select(LayerStatsRow)
        .join(
            EpochRow,
            (EpochRow.experiment_id == LayerStatsRow.experiment_id)
            & (EpochRow.epoch == LayerStatsRow.epoch),
        )
        .where(LayerStatsRow.experiment_id == experiment_id)
        .order_by(LayerStatsRow.epoch)
    ).all()
    return [
        EpochLayers(epoch=row.epoch, layers=[LayerStats.from_json(layer) for layer in row.layers])
        for row in rows
    ]


def save_evaluation(session: Session, *, experiment_id: str, evaluation: Evaluation) -> None:
    row = session.get(EvaluationRow, experiment_id)
    if row is None:
        row = EvaluationRow(experiment_id=experiment_id, requested_at=utcnow())
        session.add(row)
    row.status = EvaluationStatus.READY
    row.evaluation = evaluation.to_json()
    row.error = None


def fail_evaluation(session: Session, *, experiment_id: str, error: str) -> None:
    session.execute(
        update(EvaluationRow)
        .where(EvaluationRow.experiment_id == experiment_id)
        .values(status=EvaluationStatus.FAILED, error=error)
    )


def evaluation_state(session: Session, experiment_id: str) -> EvaluationState | None:
    row = session.get(EvaluationRow, experiment_id)
    if row is None:
        return None
    return EvaluationState(
        status=EvaluationStatus(row.status),
        requested_at=row.requested_at,
        evaluation=Evaluation.from_json(row.evaluation) if row.evaluation else None,
        error=row.error,
    )


def request_evaluation(session: Session, *, experiment_id: str, stale_after: float) -> bool:
    """Mark the evaluation pending; True when the caller should send a worker to make it.

    Only one of many concurrent callers gets True, and only when nothing was asked for yet or
    the last request is older than `stale_after` seconds (its delivery or its worker was lost).
    """
    now = utcnow()
    try:
        with session.begin_nested():
            session.add(
                EvaluationRow(
                    experiment_id=experiment_id,
                    status=EvaluationStatus.PENDING,
                    requested_at=now,
                )
            )
        return True
    except IntegrityError:
        pass  # asked for before: retry only a stale request
    renewed = session.execute(
        update(EvaluationRow)
        .where(
            EvaluationRow.experiment_id == experiment_id,
            EvaluationRow.status == EvaluationStatus.PENDING,
            EvaluationRow.requested_at < now - timedelta(seconds=stale_after),
        )
        .values(requested_at=now)
    )
    return bool(getattr(renewed, "rowcount", 0) == 1)
