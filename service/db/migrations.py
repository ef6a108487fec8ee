"""Bring the database to Alembic head, or refuse a revision this code does not know.

On SQLite every migration runs the way SQLite's own manual says a schema change must
(https://sqlite.org/lang_altertable.html#otheralter): a rebuilt table is dropped and its copy
renamed, and with foreign keys on that DROP deletes every child row (ON DELETE CASCADE).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from alembic import command
from service.db.session import copy_sqlite
from service.errors import MigrationRefused, UnknownRevision

log = logging.getLogger(__name__)

# Migrations live at the project's top level; an installed (non-editable) copy of the package
# finds them in the working directory it is started from, as the Docker image does.
_SOURCE_ALEMBIC_DIR = Path(__file__).resolve().parents[2] / "alembic"
ALEMBIC_DIR = (
    _SOURCE_ALEMBIC_DIR if (_SOURCE_ALEMBIC_DIR / "env.py").is_file() else Path.cwd() / "alembic"
)

# A revision whose upgrade recreates an existing table on SQLite (alembic's batch mode does for
# most changes but adding a column or an index) says so with `REBUILDS_TABLES = True` at module
# level; upgrading a SQLite file across one first copies the file aside.
# tests/db/test_upgrade_keeps_rows.py fails when a migration rebuilds a table without it.
REBUILDS_FLAG = "REBUILDS_TABLES"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(database_url: str, engine: Engine) -> str:
    """Migrate to head; raise UnknownRevision when the database is ahead of (or beside) us.

    Before an upgrade that rebuilds a table, a SQLite file is first copied aside (see
    `back_up_sqlite`)."""
    config = alembic_config(database_url)
    scripts = ScriptDirectory.from_config(config)
    current = current_revision(engine)
    known = {revision.revision for revision in scripts.walk_revisions()}
    if current is not None and current not in known:
        raise UnknownRevision(
            f"the database is at revision {current!r}, which this code does not know: "
            "it was migrated by a newer version; run that version or restore a backup"
        )
    rebuilding = rebuilding_revisions(scripts, current)
    if current is not None and rebuilding:
        back_up_sqlite(database_url, current, rebuilding)
    command.upgrade(config, "head")
    head = scripts.get_current_head()
    assert head is not None
    return head


def rebuilding_revisions(scripts: ScriptDirectory, current: str | None) -> list[str]:
    """The revisions between `current` and head whose upgrade rebuilds a table, oldest first."""
    pending = scripts.iterate_revisions("heads", current or "base")
    flagged = [revision.revision for revision in pending if declares_rebuild(revision.module)]
    return flagged[::-1]


def declares_rebuild(module: object) -> bool:
    """Whether a revision's module sets REBUILDS_TABLES = True."""
    return getattr(module, REBUILDS_FLAG, False) is True


def backup_path(database: str, revision: str) -> Path:
    """Where the copy of a SQLite file at `revision` goes: beside it, `<file>.bak-<revision>`."""
    return Path(f"{database}.bak-{revision}")


def back_up_sqlite(database_url: str, revision: str, rebuilding: list[str]) -> Path | None:
    """Copy a SQLite file database aside with SQLite's online backup (a consistent copy,
    whatever the WAL holds), before migrations that rebuild tables; None for other databases."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    assert url.database is not None
    target = backup_path(url.database, revision)
    target.unlink(missing_ok=True)  # an earlier copy of the same revision, or a stray file
    copy_sqlite(Path(url.database), target)
    log.warning(
        "copied the database %s to %s (revision %s) before migration %s rebuilds tables; "
        "delete the copy once the service runs well",
        url.database,
        target,
        revision,
        ", ".join(rebuilding),
    )
    return target


@contextmanager
def sqlite_schema_change(connection: Connection) -> Iterator[None]:
    """Run the block as one SQLite transaction with foreign keys off, and commit it only if no
    row is left referring to a missing one (else roll back and raise MigrationRefused).

    The connection must be in autocommit (`isolation_level="AUTOCOMMIT"`) and not in a
    transaction: `PRAGMA foreign_keys` does nothing inside one, and Python's sqlite3 would
    otherwise commit before each DDL statement, leaving a failed upgrade half done."""
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if connection.exec_driver_sql("PRAGMA foreign_keys").scalar() != 0:
        raise RuntimeError("SQLite kept foreign keys on: the migration began inside a transaction")
    try:
        # IMMEDIATE: the write lock from the start, so a second process migrating at the same
        # time waits for this one (busy_timeout) and then finds nothing to do, instead of
        # failing on the revision it read before this one committed.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
            _check_foreign_keys(connection)
        except BaseException:
            # Some errors (a full disk, an I/O error) end the transaction themselves.
            if getattr(connection.connection.driver_connection, "in_transaction", True):
                connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection: Connection) -> None:
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if not violations:
        return
    broken: dict[tuple[str, str], int] = {}
    for table, _rowid, parent, _key in violations:
        broken[(table, parent)] = broken.get((table, parent), 0) + 1
    listed = ", ".join(
        f"{count} row(s) of {table} refer to missing {parent}"
        for (table, parent), count in sorted(broken.items())
    )
    raise MigrationRefused(
        f"the migration was rolled back, the database is as it was: {listed}. "
        "Delete those rows (or restore a backup) and start again"
    )
