"""Alembic migrations: head is exactly the ORM's schema, base is empty, unknown revisions refuse.

Runs on SQLite by default and on PostgreSQL when DATABASE_URL points there (the `settings`
fixture then starts each test from an empty `public` schema).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from alembic import command
from service.api.app import create_app
from service.config import Settings
from service.db.migrations import (
    alembic_config,
    current_revision,
    upgrade_to_head,
)
from service.db.models import Base
from service.db.session import Database
from service.errors import UnknownRevision

FUTURE_REVISION = "9999_from_the_future"


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    yield database
    database.dispose()


def head() -> str:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    found = scripts.get_current_head()
    assert found is not None
    return found


def schema_diff(db: Database) -> list[Any]:
    """What autogenerate would change to make the database match the ORM; empty when equal.

    Alembic's default type comparison looks through TypeDecorators (UTCDateTime compares as
    its DateTime(timezone=True) impl): test_type_drift_is_noticed keeps that honest.
    """
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names())


def stamp_unknown(db: Database) -> None:
    """Leave the database as a newer version of the service would: at a revision we lack."""
    with db.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE alembic_version SET version_num = :revision"),
            {"revision": FUTURE_REVISION},
        )


def test_migrations_have_one_head() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(scripts.get_heads()) == 1, "merge the Alembic branches"


def test_upgrade_from_empty_gives_the_orm_schema(settings: Settings, db: Database) -> None:
    assert tables(db) == set()
    assert upgrade_to_head(settings.database_url, db.engine) == head()
    assert current_revision(db.engine) == head()
    assert tables(db) == {*Base.metadata.tables, "alembic_version"}
    assert schema_diff(db) == []


def test_upgrade_twice_changes_nothing(settings: Settings, db: Database) -> None:
    upgrade_to_head(settings.database_url, db.engine)
    assert upgrade_to_head(settings.database_url, db.engine) == head()
    assert schema_diff(db) == []


# SQLite keeps no time zone in its column types, so that drift can only show on PostgreSQL.
DRIFTS = {"string": sa.String(40)}
if os.environ.get("DATABASE_URL", "").startswith("postgresql"):
    DRIFTS["timestamp-without-zone"] = sa.DateTime(timezone=False)


@pytest.mark.parametrize("drifted", list(DRIFTS.values()), ids=list(DRIFTS))
def test_type_drift_is_noticed(settings: Settings, db: Database, drifted: Any) -> None:
    upgrade_to_head(settings.database_url, db.engine)
    with db.engine.begin() as connection:
        operations = Operations(MigrationContext.configure(connection))
        with operations.batch_alter_table("epochs") as batch:
            batch.alter_column("recorded_at", type_=drifted)
    [[change]] = schema_diff(db)
    assert change[0] == "modify_type"
    assert change[2:4] == ("epochs", "recorded_at")


def test_downgrade_to_base_leaves_only_the_version_table(settings: Settings, db: Database) -> None:
    upgrade_to_head(settings.database_url, db.engine)
    command.downgrade(alembic_config(settings.database_url), "base")
    assert tables(db) == {"alembic_version"}
    assert current_revision(db.engine) is None


def test_upgrade_after_downgrade_gives_the_orm_schema_again(
    settings: Settings, db: Database
) -> None:
    upgrade_to_head(settings.database_url, db.engine)
    command.downgrade(alembic_config(settings.database_url), "base")
    upgrade_to_head(settings.database_url, db.engine)
    assert schema_diff(db) == []


def test_unknown_revision_refuses_to_upgrade(settings: Settings, db: Database) -> None:
    upgrade_to_head(settings.database_url, db.engine)
    stamp_unknown(db)
    with pytest.raises(UnknownRevision) as refused:
        upgrade_to_head(settings.database_url, db.engine)
    message = str(refused.value)
    assert FUTURE_REVISION in message
    assert "newer version" in message
    assert current_revision(db.engine) == FUTURE_REVISION  # left as it was


def test_app_refuses_to_start_on_an_unknown_revision(settings: Settings, db: Database) -> None:
    upgrade_to_head(settings.database_url, db.engine)
    stamp_unknown(db)
    with (
        pytest.raises(UnknownRevision, match=FUTURE_REVISION),
        TestClient(create_app(settings)),
    ):
        pytest.fail("the app served a database it does not know")
    assert current_revision(db.engine) == FUTURE_REVISION


def test_0008_turns_model_uris_into_store_keys(settings: Settings, db: Database) -> None:
    config = alembic_config(settings.database_url)
    command.upgrade(config, "0003")
    uris = {
        "a" * 32: "/old/place/models/experiments/" + "a" * 32 + "/model.keras",
        "b" * 32: "s3://bucket/lab/experiments/" + "b" * 32 + "/model.keras",
        "c" * 32: "experiments/" + "c" * 32 + "/model.keras",
    }
    with db.engine.begin() as connection:
        for experiment_id, uri in uris.items():
            connection.execute(
                sa.text(
                    "INSERT INTO experiments (id, name, spec, status, client_id, created_at, "
                    "attempt, max_attempts, cancel_requested, model_uri) VALUES (:id, 'x', '{}', "
                    "'succeeded', 'c', CURRENT_TIMESTAMP, 1, 3, false, :uri)"
                ),
                {"id": experiment_id, "uri": uri},
            )
    upgrade_to_head(settings.database_url, db.engine)
    with db.engine.connect() as connection:
        stored = dict(connection.execute(sa.text("SELECT id, model_uri FROM experiments")).all())
    assert stored == {key: f"experiments/{key}/model.keras" for key in uris}
