"""Reads of the change log (table `changes`, appended to by the triggers of migration 0006)."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import ChangeRow
from service.domain import Change

PAGE = 500


def head(session: Session) -> int:
    """The id of the newest change, 0 for an empty log."""
    return session.scalar(select(func.max(ChangeRow.id))) or 0


def since(
    session: Session, *, after: int, experiment_id: str | None = None, limit: int = PAGE
) -> list[Change]:
    """Changes with an id above `after`, oldest first; only one experiment's when given."""
    query = select(ChangeRow).where(ChangeRow.id > after)
    if experiment_id is not None:
        query = query.where(ChangeRow.experiment_id == experiment_id)
    rows = session.scalars(query.order_by(ChangeRow.id).limit(limit)).all()
    return [_to_change(row) for row in rows]


def _to_change(row: ChangeRow) -> Change:
    data = json.loads(row.payload)
    if "cancel_requested" in data:  # SQLite's JSON says 0/1
        data["cancel_requested"] = bool(data["cancel_requested"])
    return Change(id=row.id, experiment_id=row.experiment_id, kind=row.kind, data=data)
