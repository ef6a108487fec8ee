"""Who owns an experiment, a study or an alias (their owner's id and name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from service.db.models import ExperimentRow, ModelAliasRow, PersonRow, StudyRow

Owned = Literal["experiment", "study", "alias"]


@dataclass(frozen=True)
class OwnerFilter:
    """Whose work a list shows: a client's own (`?owner=me`), or a person's by name."""

    client_id: str | None = None
    name: str | None = None

    def where(self, table: type[ExperimentRow] | type[StudyRow]) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.client_id is not None:
            found.append(table.client_id == self.client_id)
        if self.name is not None:
            named = select(PersonRow.id).where(PersonRow.name == self.name)
            found.append(table.owner_id.in_(named))
        return found


def owner_of(session: Session, kind: Owned, key: str) -> tuple[str | None, str | None] | None:
    """(owner id, owner name) of the thing; None when there is no such thing."""
    row: ExperimentRow | StudyRow | ModelAliasRow | None
    if kind == "experiment":
        row = session.get(ExperimentRow, key)
    elif kind == "study":
        row = session.get(StudyRow, key)
    else:
        row = session.get(ModelAliasRow, key)
    if row is None:
        return None
    return row.owner_id, row.owner_name
