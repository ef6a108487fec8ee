"""Alembic environment: the URL comes from the same Settings the service reads.

On SQLite, every run (upgrade or downgrade, from the service or from `alembic`) is one
transaction with foreign keys off and checked before the commit: see
`service.db.migrations.sqlite_schema_change`.
"""

from __future__ import annotations

from alembic import context
from service.config import get_settings
from service.db.migrations import sqlite_schema_change
from service.db.models import Base
from service.db.session import make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    try:
        if engine.dialect.name == "sqlite":
            # Autocommit: sqlite_schema_change issues BEGIN and COMMIT itself.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                context.configure(
                    connection=connection,
                    target_metadata=target_metadata,
                    render_as_batch=True,
                    transactional_ddl=True,
                )
                with sqlite_schema_change(connection):
                    context.run_migrations()
        else:
            with engine.connect() as connection:
                context.configure(connection=connection, target_metadata=target_metadata)
                with context.begin_transaction():
                    context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
