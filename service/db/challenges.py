"""Challenges and their entries: rows in, domain values out."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.db.models import (
    ChallengeEntryRow,
    ChallengeRow,
    EvaluationRow,
    ExperimentRow,
)
from service.domain import Challenge, ChallengeEntry, Rules, Status
from service.errors import ChallengeNotFound


def _challenge(row: ChallengeRow) -> Challenge:
    return Challenge(
        id=row.id,
        name=row.name,
        description=row.description,
        rules=Rules.from_json(row.rules),
        max_entries_per_person=row.max_entries_per_person,
        closes_at=row.closes_at,
        closed_at=row.closed_at,
        created_at=row.created_at,
    )


def create_challenge(
    session: Session,
    *,
    name: str,
    description: str | None,
    rules: Rules,
    max_entries_per_person: int | None,
    closes_at: datetime | None,
    split_seed: int,
) -> Challenge:
    row = ChallengeRow(
        id=uuid.uuid4().hex,
        name=name,
        description=description,
        rules=rules.to_json(),
        max_entries_per_person=max_entries_per_person,
        closes_at=closes_at,
        split_seed=split_seed,
    )
    session.add(row)
    session.flush()
    return _challenge(row)


def _row(session: Session, challenge_id: str) -> ChallengeRow:
    row = session.get(ChallengeRow, challenge_id)
    if row is None:
        raise ChallengeNotFound(
            f"no challenge with id {challenge_id!r}; list them with GET /challenges"
        )
    return row


def get_challenge(session: Session, challenge_id: str) -> Challenge:
    return _challenge(_row(session, challenge_id))


def list_challenges(session: Session) -> list[Challenge]:
    rows = session.scalars(select(ChallengeRow).order_by(ChallengeRow.created_at.desc()))
    return [_challenge(row) for row in rows]


def close_challenge(session: Session, challenge_id: str, *, now: datetime) -> Challenge:
    """Close it now; closing a closed challenge keeps its first closing time."""
    row = _row(session, challenge_id)
    if row.closed_at is None:
        row.closed_at = min(now, row.closes_at) if row.closes_at is not None else now
    return _challenge(row)


def split_seed(session: Session, challenge_id: str) -> int:
    return _row(session, challenge_id).split_seed


def count_entries(session: Session, *, challenge_id: str, entrant: str) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(ChallengeEntryRow)
            .where(
                ChallengeEntryRow.challenge_id == challenge_id,
                ChallengeEntryRow.entrant == entrant,
            )
        ).scalar_one()
    )


def add_entry(
    session: Session, *, challenge_id: str, experiment_id: str, entrant: str, entrant_name: str
) -> None:
    session.add(
        ChallengeEntryRow(
            challenge_id=challenge_id,
            experiment_id=experiment_id,
            entrant=entrant,
            entrant_name=entrant_name,
        )
    )


def _params(summary: dict[str, Any] | None) -> int | None:
    value = (summary or {}).get("total_params")
    return int(value) if isinstance(value, int | float) else None


def entries(session: Session, challenge_id: str) -> list[ChallengeEntry]:
    """Every entry of the challenge, oldest first."""
    rows = session.execute(
        select(ChallengeEntryRow, ExperimentRow.status, ExperimentRow.summary, ExperimentRow.spec)
        .join(ExperimentRow, ExperimentRow.id == ChallengeEntryRow.experiment_id)
        .where(ChallengeEntryRow.challenge_id == challenge_id)
        .order_by(ChallengeEntryRow.created_at, ChallengeEntryRow.experiment_id)
    ).all()
    return [
        ChallengeEntry(
            experiment_id=entry.experiment_id,
            challenge_id=entry.challenge_id,
            entrant=entry.entrant,
            entrant_name=entry.entrant_name,
            created_at=entry.created_at,
            status=Status(status),
            params=_params(summary),
            epochs=int(spec.get("fit", {}).get("epochs", 0)),
            public_score=entry.public_score,
            private_score=entry.private_score,
        )
        for entry, status, summary, spec in rows
    ]


def unscored(session: Session, challenge_id: str) -> list[tuple[str, str]]:
    """Entries whose training succeeded and whose evaluation is ready but not yet scored:
    (experiment id, the evaluation's packed per-image hits, base64)."""
    rows = session.execute(
        select(ChallengeEntryRow.experiment_id, EvaluationRow.evaluation)
        .join(ExperimentRow, ExperimentRow.id == ChallengeEntryRow.experiment_id)
        .join(EvaluationRow, EvaluationRow.experiment_id == ChallengeEntryRow.experiment_id)
        .where(
            ChallengeEntryRow.challenge_id == challenge_id,
            ChallengeEntryRow.public_score.is_(None),
            ExperimentRow.status == Status.SUCCEEDED.value,
            EvaluationRow.status == "ready",
        )
    ).all()
    return [
        (experiment_id, evaluation["correct"])
        for experiment_id, evaluation in rows
        if evaluation and evaluation.get("correct")
    ]


def save_scores(session: Session, *, experiment_id: str, public: float, private: float) -> None:
    row = session.get(ChallengeEntryRow, experiment_id)
    if row is not None:
        row.public_score, row.private_score = public, private


def sealed(session: Session, experiment_ids: Iterable[str], *, now: datetime) -> set[str]:
    """Of these experiments, the entries of challenges still open: their full test scores and
    evaluations are withheld from students until the close."""
    wanted = list(dict.fromkeys(experiment_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        found.update(
            session.scalars(
                select(ChallengeEntryRow.experiment_id)
                .join(ChallengeRow, ChallengeRow.id == ChallengeEntryRow.challenge_id)
                .where(
                    ChallengeEntryRow.experiment_id.in_(wanted[start : start + 500]),
                    _open_challenge(now),
                )
            )
        )
    return found


def train_seconds_limit(session: Session, experiment_id: str) -> float | None:
    """The wall-time rule of the challenge this experiment was entered into, if any."""
    rules = session.execute(
        select(ChallengeRow.rules)
        .join(ChallengeEntryRow, ChallengeEntryRow.challenge_id == ChallengeRow.id)
        .where(ChallengeEntryRow.experiment_id == experiment_id)
    ).scalar_one_or_none()
    return Rules.from_json(rules).max_train_seconds if rules else None


def _open_challenge(now: datetime) -> Any:
    return ChallengeRow.closed_at.is_(None) & (
        ChallengeRow.closes_at.is_(None) | (ChallengeRow.closes_at > now)
    )


def is_sealed(session: Session, experiment_id: str, *, now: datetime) -> bool:
    """Whether the experiment is an entry of a challenge still open."""
    return bool(sealed(session, [experiment_id], now=now))


def seal_scores(
    session: Session, experiment_id: str, *, test_loss: float, test_accuracy: float
) -> None:
    """Hold an entry's full test scores until its challenge closes."""
    row = session.get(ChallengeEntryRow, experiment_id)
    if row is not None:
        row.sealed_test_loss, row.sealed_test_accuracy = test_loss, test_accuracy


def unseal_closed(session: Session, *, now: datetime) -> int:
    """Give the entries of every closed challenge their full test scores back; how many."""
    closed = select(ChallengeRow.id).where(~_open_challenge(now))
    held = session.execute(
        select(
            ChallengeEntryRow.experiment_id,
            ChallengeEntryRow.sealed_test_loss,
            ChallengeEntryRow.sealed_test_accuracy,
        ).where(
            ChallengeEntryRow.challenge_id.in_(closed),
            ChallengeEntryRow.sealed_test_accuracy.is_not(None),
        )
    ).all()
    for experiment_id, test_loss, test_accuracy in held:
        session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.id == experiment_id)
            .values(test_loss=test_loss, test_accuracy=test_accuracy)
        )
        session.execute(
            update(ChallengeEntryRow)
            .where(ChallengeEntryRow.experiment_id == experiment_id)
            .values(sealed_test_loss=None, sealed_test_accuracy=None)
        )
    return len(held)
