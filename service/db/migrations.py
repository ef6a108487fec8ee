"""Bring the database to Alembic head, or refuse a revision this code does not know."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from alembic import command
from service.errors import UnknownRevision

# Migrations live at the project's top level; an installed (non-editable) copy of the package
# finds them in the working directory it is started from, as the Docker image does.
_SOURCE_ALEMBIC_DIR = Path(__file__).resolve().parents[2] / "alembic"
ALEMBIC_DIR = (
    _SOURCE_ALEMBIC_DIR if (_SOURCE_ALEMBIC_DIR / "env.py").is_file() else Path.cwd() / "alembic"
)


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(database_url: str, engine: Engine) -> str:
    """Migrate to head; raise UnknownRevision when the database is ahead of (or beside) us."""
    config = alembic_config(database_url)
    scripts = ScriptDirectory.from_config(config)
    current = current_revision(engine)
    known = {revision.revision for revision in scripts.walk_revisions()}
    if current is not None and current not in known:
        raise UnknownRevision(
            f"the database is at revision {current!r}, which this code does not know: "
            "it was migrated by a newer version; run that version or restore a backup"
        )
    command.upgrade(config, "head")
    head = scripts.get_current_head()
    assert head is not None
    return head
