"""The engine and the one commit-on-success / rollback-on-error session scope."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from service.config import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
# libpq's connect_timeout is whole seconds, and it treats anything below 2 as 2.
MIN_CONNECT_TIMEOUT_S = 2


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    try:  # fair share's usage sums exp() in SQL; builds without the math functions lack it
        cursor.execute("SELECT exp(0)")
    except sqlite3.OperationalError:
        dbapi_connection.create_function("exp", 1, math.exp, deterministic=True)
    cursor.close()


def _postgres_bounds(
    connect_timeout: float | None, statement_timeout: float | None
) -> dict[str, Any]:
    """libpq arguments bounding a connect and, server-side, every statement."""
    bounds: dict[str, Any] = {}
    if connect_timeout:
        bounds["connect_timeout"] = max(MIN_CONNECT_TIMEOUT_S, math.ceil(connect_timeout))
    if statement_timeout:
        bounds["options"] = f"-c statement_timeout={round(statement_timeout * 1000)}"
    return bounds


def make_engine(
    database_url: str,
    *,
    connect_timeout: float | None = None,
    statement_timeout: float | None = None,
) -> Engine:
    """An engine for the URL; on PostgreSQL, connects and statements bounded when asked
    (migrations leave them unbounded: a schema change may rightly take long)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            connect_args=_postgres_bounds(connect_timeout, statement_timeout),
        )
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while writers go on (they wait at most a
    step's pages), WAL mode included."""
    source_connection = sqlite3.connect(source)
    target_connection = sqlite3.connect(target)
    try:
        with target_connection:
            source_connection.backup(target_connection, pages=1024)
    finally:
        target_connection.close()
        source_connection.close()


class Database:
    """Owns an engine; `scope()` yields a session that commits on success, rolls back on error."""

    def __init__(
        self,
        database_url: str,
        *,
        connect_timeout: float | None = None,
        statement_timeout: float | None = None,
    ) -> None:
        self.url = database_url
        self.engine = make_engine(
            database_url, connect_timeout=connect_timeout, statement_timeout=statement_timeout
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The service's database, with the connect and statement bounds the settings give."""
        return cls(
            settings.database_url,
            connect_timeout=settings.database_connect_timeout,
            statement_timeout=settings.database_statement_timeout,
        )

    @contextmanager
    def scope(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        """Raise unless the database answers a trivial query (for /health)."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
