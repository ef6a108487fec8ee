"""The database's clock: the one clock every lease comparison reads.

Workers, sweepers and the API may run on machines whose clocks disagree; a lease written by
one and judged by another must use a clock they share, and the database is the one they all
reach. PostgreSQL answers `now()` (a timestamptz); SQLite, which lives on one machine, answers
that machine's clock in the layout SQLAlchemy stores (`YYYY-MM-DD HH:MM:SS.fff`, UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

_SQLITE_NOW = text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")


def database_now(session: Session) -> datetime:
    """The database's current time as an aware UTC datetime (what UTCDateTime columns hold)."""
    if session.get_bind().dialect.name == "sqlite":
        stamp = session.scalar(_SQLITE_NOW)
        assert isinstance(stamp, str)
        return datetime.fromisoformat(stamp).replace(tzinfo=UTC)
    value = session.scalar(select(func.now()))
    assert isinstance(value, datetime)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
