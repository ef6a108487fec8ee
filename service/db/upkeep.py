"""What backups, retention and the disk report read from (and write to) the database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from service.db.models import Base, ExperimentRow, ModelAliasRow
from service.db.session import Database
from service.domain import Status


def row_counts(session: Session) -> dict[str, int]:
    """Rows per table of the ORM's schema that the database has (an older revision lacks some),
    for a backup's manifest."""
    present = set(inspect(session.connection()).get_table_names())
    return {
        table.name: int(session.execute(select(func.count()).select_from(table)).scalar_one())
        for table in Base.metadata.sorted_tables
        if table.name in present
    }


def model_keys(session: Session) -> list[str]:
    """The model store's key of every experiment that has a model, for a backup."""
    query = select(ExperimentRow.model_uri).where(ExperimentRow.model_uri.is_not(None))
    return [key for key in session.execute(query).scalars() if key]


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite database URL; None for PostgreSQL or an in-memory SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def database_bytes(db: Database) -> int:
    """The database's size on disk: the SQLite file and its write-ahead log, or PostgreSQL's
    own count for the current database."""
    path = sqlite_path(db.url)
    if path is not None:
        return sum(
            candidate.stat().st_size
            for candidate in (path, path.with_name(f"{path.name}-wal"))
            if candidate.exists()
        )
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            return int(
                connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            )
    return 0


@dataclass(frozen=True)
class StoredFiles:
    """An experiment whose folder in the model store retention may remove."""

    experiment_id: str
    status: Status
    finished_at: datetime | None
    model_key: str | None


_DISCARDABLE = (Status.FAILED, Status.CANCELLED, Status.PRUNED)


def discardable_before(session: Session, cutoff: datetime) -> list[StoredFiles]:
    """Failed, cancelled and pruned experiments finished before `cutoff` that no alias names:
    their files are what RETENTION_DAYS lets go."""
    aliased = select(ModelAliasRow.experiment_id)
    rows = session.execute(
        select(
            ExperimentRow.id,
            ExperimentRow.status,
            ExperimentRow.finished_at,
            ExperimentRow.model_uri,
        )
        .where(
            ExperimentRow.status.in_([status.value for status in _DISCARDABLE]),
            ExperimentRow.finished_at < cutoff,
            ExperimentRow.id.not_in(aliased),
        )
        .order_by(ExperimentRow.finished_at)
    ).all()
    return [StoredFiles(row[0], Status(row[1]), row[2], row[3]) for row in rows]


def statuses(session: Session, experiment_ids: Iterable[str]) -> dict[str, Status]:
    """The status of each experiment that still has a row (folders of deleted ones are absent)."""
    wanted = list(experiment_ids)
    found: dict[str, Status] = {}
    # Chunks keep each IN list under SQLite's bound-parameter limit.
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(
            select(ExperimentRow.id, ExperimentRow.status).where(ExperimentRow.id.in_(chunk))
        ).all()
        found.update({row[0]: Status(row[1]) for row in rows})
    return found


def forget_models(session: Session, experiment_ids: Iterable[str]) -> None:
    """Mark experiments as having no model any more: their files were reclaimed; rows stay."""
    ids = list(experiment_ids)
    for start in range(0, len(ids), 500):
        session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.id.in_(ids[start : start + 500]))
            .values(model_uri=None)
        )
