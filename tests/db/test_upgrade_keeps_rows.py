"""Upgrading keeps every row: a database at any earlier revision, holding rows in every table
(child rows included), comes to head with each row and value it had; on SQLite a file is copied
aside first when an upgrade rebuilds a table, and an upgrade that would orphan rows is refused.

Runs on SQLite by default and on PostgreSQL when DATABASE_URL points there (.ci/run's scaled
step). A migration that adds a table or a column adds its rows or values to ROWS below:
test_rows_cover_every_table_and_column fails until it does.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from alembic import command
from service.config import Settings
from service.db.migrations import (
    REBUILDS_FLAG,
    alembic_config,
    backup_path,
    current_revision,
    declares_rebuild,
    sqlite_schema_change,
    upgrade_to_head,
)
from service.db.models import Base
from service.db.session import Database
from service.errors import MigrationRefused

SCRIPTS = ScriptDirectory.from_config(alembic_config("sqlite://"))
REVISIONS = [revision.revision for revision in SCRIPTS.walk_revisions()][::-1]  # oldest first
HEAD = REVISIONS[-1]

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
LONE = "a" * 32  # an experiment of its own, trained, aliased, evaluated, tagged
TRIAL = "b" * 32  # a study's trial (from 0006 on; an ordinary experiment before)
STUDY = "s" * 32
CHALLENGE = "c" * 32
PERSON = "d" * 32  # a student of the class (0011), who owns the experiments and the study


def _experiment(experiment_id: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": experiment_id,
        "name": f"net {experiment_id[0]}",
        "description": "two dense layers",
        "spec": {"layers": [{"type": "Dense", "units": 32}], "epochs": 3},
        "summary": {"params": 25450},
        "status": "succeeded",
        "client_id": "client-1",
        "created_at": T0,
        "started_at": T0 + timedelta(seconds=5),
        "finished_at": T0 + timedelta(seconds=60),
        "test_loss": 0.25,
        "test_accuracy": 0.93,
        "error": None,
        "attempt": 2,
        "max_attempts": 3,
        "lease_owner": None,
        "lease_expires_at": None,
        "cancel_requested": False,
        "model_uri": f"experiments/{experiment_id}/model.keras",
        "tf_version": "2.18.0",
        "keras_version": "3.6.0",
        "spec_hash": experiment_id[0] * 64,
        "seed": 7,
        "python_version": "3.11.7",
        "numpy_version": "2.0.2",
        "kernels": "TensorFlow",
        "rerun_of": None,
        "owner_id": PERSON,
        "study_id": None,
        "trial_number": None,
        "trial_params": None,
        "delivered_at": T0 + timedelta(seconds=1),
        "idempotency_key": f"key-{experiment_id[0]}",
        "request_digest": experiment_id[0] * 64,
    }
    return row | values


def _epoch(experiment_id: str, epoch: int) -> dict[str, Any]:
    return {
        "experiment_id": experiment_id,
        "epoch": epoch,
        "loss": 0.5 / epoch,
        "accuracy": 0.8 + epoch / 100,
        "val_loss": 0.6 / epoch,
        "val_accuracy": 0.78 + epoch / 100,
        "seconds": 1.5,
        "attempt": 1 if epoch == 1 else 2,
        "recorded_at": T0 + timedelta(seconds=10 * epoch),
        "learning_rate": 0.001,
    }


# One full set of rows for the newest schema. A database at an older revision gets the rows of
# each table it has, with the columns it has (its values valid there: no NULL loss before 0002).
ROWS: dict[str, list[dict[str, Any]]] = {
    "people": [
        {
            "id": PERSON,
            "name": "Ada",
            "role": "student",
            "token_hash": "e" * 64,
            "created_at": T0,
            "revoked_at": None,
        }
    ],
    "studies": [
        {
            "id": STUDY,
            "name": "width",
            "client_id": "client-1",
            "owner_id": PERSON,
            "definition": {"space": {"layers.0.units": [16, 32]}},
            "plan": {"trials": 2},
            "status": "running",
            "advances": 1,
            "created_at": T0,
            "finished_at": None,
        }
    ],
    "experiments": [
        _experiment(LONE),
        _experiment(
            TRIAL,
            status="running",
            finished_at=None,
            test_loss=None,
            test_accuracy=None,
            lease_owner="worker-1",
            lease_expires_at=T0 + timedelta(minutes=5),
            rerun_of=LONE,
            study_id=STUDY,
            trial_number=0,
            trial_params={"layers.0.units": 16},
            idempotency_key=None,
            request_digest=None,
        ),
    ],
    "attempts": [
        {
            "experiment_id": LONE,
            "number": 1,
            "worker": "worker-1",
            "start_epoch": 0,
            "started_at": T0 + timedelta(seconds=5),
            "ended_at": T0 + timedelta(seconds=20),
            "outcome": "the worker vanished",
        },
        {
            "experiment_id": LONE,
            "number": 2,
            "worker": "worker-2",
            "start_epoch": 1,
            "started_at": T0 + timedelta(seconds=30),
            "ended_at": T0 + timedelta(seconds=60),
            "outcome": None,
        },
        {
            "experiment_id": TRIAL,
            "number": 1,
            "worker": "worker-1",
            "start_epoch": 0,
            "started_at": T0 + timedelta(seconds=40),
            "ended_at": None,
            "outcome": None,
        },
    ],
    "epochs": [_epoch(LONE, 1), _epoch(LONE, 2), _epoch(LONE, 3), _epoch(TRIAL, 1)],
    "model_aliases": [
        {
            "alias": "best",
            "experiment_id": LONE,
            "updated_at": T0 + timedelta(minutes=2),
            "owner_id": PERSON,
        },
        {
            "alias": "latest",
            "experiment_id": LONE,
            "updated_at": T0 + timedelta(minutes=3),
            "owner_id": None,  # set with API_TOKEN: nobody's
        },
    ],
    "evaluations": [
        {
            "experiment_id": LONE,
            "status": "done",
            "requested_at": T0 + timedelta(minutes=2),
            "evaluation": {"confusion": [[1, 0], [0, 1]]},
            "error": None,
        }
    ],
    "layer_stats": [
        {"experiment_id": LONE, "epoch": 1, "attempt": 1, "layers": [{"name": "dense"}]},
        {"experiment_id": LONE, "epoch": 3, "attempt": 2, "layers": [{"name": "dense"}]},
    ],
    # Written by triggers from 0008 on; one row as an older service left it (ids above theirs).
    "changes": [
        {
            "id": 100,
            "experiment_id": LONE,
            "kind": "status",
            "payload": '{"status": "succeeded"}',
            "recorded_at": T0 + timedelta(seconds=60),
        }
    ],
    # created_at: the experiment's own (0015).
    "experiment_tags": [
        {"experiment_id": LONE, "tag": "class-1", "created_at": T0},
        {"experiment_id": LONE, "tag": "dense", "created_at": T0},
        {"experiment_id": TRIAL, "tag": "class-1", "created_at": T0},
    ],
    "challenges": [
        {
            "id": CHALLENGE,
            "name": "best MLP under 300k parameters",
            "description": "the notebook's challenge",
            "rules": {"max_params": 300000, "allowed_layers": ["Flatten", "Dense"]},
            "max_entries_per_person": 5,
            "closes_at": T0 + timedelta(days=7),
            "closed_at": None,
            "split_seed": 2**40 + 7,  # a BigInteger: past 32 bits
            "created_at": T0,
        }
    ],
    "challenge_entries": [
        {
            "experiment_id": LONE,
            "challenge_id": CHALLENGE,
            "entrant": "client-1",
            "entrant_name": "Ada",
            "created_at": T0,
            "public_score": 0.931,
            "private_score": 0.929,
            "sealed_test_loss": 0.25,
            "sealed_test_accuracy": 0.93,
        }
    ],
}


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    yield database
    database.dispose()


def reflect(db: Database) -> sa.MetaData:
    """The database's tables as they are, whatever the ORM says (alembic's own table aside)."""
    metadata = sa.MetaData()
    metadata.reflect(bind=db.engine)
    metadata.remove(metadata.tables["alembic_version"])
    return metadata


def insert_rows(db: Database) -> None:
    """ROWS, cut to the tables and columns the database has, parents before children."""
    metadata = reflect(db)
    with db.engine.begin() as connection:
        for table in metadata.sorted_tables:
            rows = [
                {column.name: row[column.name] for column in table.columns}
                for row in ROWS[table.name]
            ]
            connection.execute(table.insert(), rows)


def snapshot(db: Database, columns: dict[str, list[str]]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the given tables (their given columns), ordered by primary key."""
    metadata = reflect(db)
    found: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as connection:
        for name, names in columns.items():
            table = metadata.tables[name]
            query = sa.select(*(table.c[column] for column in names)).order_by(
                *table.primary_key.columns
            )
            found[name] = [tuple(row) for row in connection.execute(query)]
    return found


def schema_diff(db: Database) -> list[Any]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def change_kinds(db: Database, experiment_id: str) -> list[str]:
    with db.engine.connect() as connection:
        query = sa.text("SELECT kind FROM changes WHERE experiment_id = :id ORDER BY id")
        return list(connection.execute(query, {"id": experiment_id}).scalars())


def test_rows_cover_every_table_and_column(settings: Settings, db: Database) -> None:
    upgrade_to_head(settings.database_url, db.engine)
    for table in reflect(db).sorted_tables:
        assert ROWS.get(table.name), f"add rows of {table.name} to ROWS"
        for row in ROWS[table.name]:
            missing = {column.name for column in table.columns} - set(row)
            assert not missing, f"give {table.name}'s rows in ROWS a value for {sorted(missing)}"


@pytest.mark.parametrize("revision", REVISIONS[:-1])
def test_upgrade_keeps_every_row(settings: Settings, db: Database, revision: str) -> None:
    command.upgrade(alembic_config(settings.database_url), revision)
    insert_rows(db)
    columns = {table.name: list(table.columns.keys()) for table in reflect(db).sorted_tables}
    before = snapshot(db, columns)
    assert all(before.values()), "every table holds rows before the upgrade"

    upgrade_to_head(settings.database_url, db.engine)

    after = snapshot(db, columns)
    assert {t: len(rows) for t, rows in after.items()} == {
        t: len(rows) for t, rows in before.items()
    }
    assert after == before
    assert current_revision(db.engine) == HEAD
    assert schema_diff(db) == []
    # The change log's triggers survive any rebuild of the tables they watch.
    with db.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE experiments SET status = 'cancelled' WHERE id = :id"), {"id": TRIAL}
        )
        connection.execute(
            sa.text(
                "INSERT INTO epochs (experiment_id, epoch, loss, seconds, attempt, recorded_at) "
                "VALUES (:id, 2, 0.1, 1.0, 1, CURRENT_TIMESTAMP)"
            ),
            {"id": TRIAL},
        )
    assert change_kinds(db, TRIAL)[-2:] == ["status", "epoch"]


def test_0015_gives_each_tag_its_experiment_s_created_at(settings: Settings, db: Database) -> None:
    command.upgrade(alembic_config(settings.database_url), "0014")
    insert_rows(db)
    later = T0 + timedelta(hours=1)
    experiments = reflect(db).tables["experiments"]
    with db.engine.begin() as connection:
        connection.execute(
            experiments.update().where(experiments.c.id == TRIAL).values(created_at=later)
        )

    upgrade_to_head(settings.database_url, db.engine)

    query = sa.text(
        "SELECT experiment_tags.experiment_id, experiment_tags.created_at = experiments.created_at "
        "FROM experiment_tags JOIN experiments ON experiments.id = experiment_tags.experiment_id "
        "ORDER BY experiment_tags.experiment_id, experiment_tags.tag"
    )
    with db.engine.connect() as connection:
        assert [tuple(row) for row in connection.execute(query)] == [
            (LONE, True),
            (LONE, True),
            (TRIAL, True),
        ]


def sqlite_file(tmp_path: Path) -> tuple[str, Database]:
    path = tmp_path / "service.db"
    url = f"sqlite:///{path}"
    return url, Database(url)


def rebuilt_tables(url: str, revision: str) -> set[str]:
    """The tables that migrating to `revision` drops and creates again on SQLite."""
    statements: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    try:
        command.upgrade(alembic_config(url), revision)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", record)
    dropped = {
        match.group(1).strip('"')
        for statement in statements
        if (match := re.match(r"\s*DROP TABLE (?:IF EXISTS )?(\S+)", statement, re.IGNORECASE))
    }
    engine = sa.create_engine(url)
    try:
        return dropped & set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_every_migration_that_rebuilds_a_table_says_so(tmp_path: Path) -> None:
    url, db = sqlite_file(tmp_path)
    db.dispose()
    for revision in REVISIONS:
        rebuilt = rebuilt_tables(url, revision)
        declared = declares_rebuild(SCRIPTS.get_revision(revision).module)
        assert declared is bool(rebuilt), (
            f"migration {revision} rebuilds {sorted(rebuilt)} on SQLite: set "
            f"{REBUILDS_FLAG} = {bool(rebuilt)} in it"
        )


def rebuilding() -> list[str]:
    return [
        revision
        for revision in REVISIONS
        if declares_rebuild(SCRIPTS.get_revision(revision).module)
    ]


def count(database: Path | str, table: str) -> int:
    with sqlite3.connect(database) as connection:
        found = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(found[0])


def test_sqlite_file_is_copied_aside_before_a_rebuild(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rebuild = rebuilding()[-1]
    before = REVISIONS[REVISIONS.index(rebuild) - 1]
    url, db = sqlite_file(tmp_path)
    command.upgrade(alembic_config(url), before)
    insert_rows(db)
    with caplog.at_level(logging.INFO, logger="service.db.migrations"):
        upgrade_to_head(url, db.engine)
    db.dispose()

    copy = backup_path(str(tmp_path / "service.db"), before)
    assert copy.name == f"service.db.bak-{before}"
    with sqlite3.connect(copy) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (before,)
    for table in ("experiments", "epochs", "attempts", "model_aliases"):
        assert count(copy, table) == len(ROWS[table])
    [line] = [record.getMessage() for record in caplog.records if str(copy) in record.getMessage()]
    assert f"before migration {rebuild} rebuilds tables" in line


def test_no_copy_when_no_pending_migration_rebuilds(tmp_path: Path) -> None:
    url, db = sqlite_file(tmp_path)
    command.upgrade(alembic_config(url), rebuilding()[-1])
    upgrade_to_head(url, db.engine)
    db.dispose()
    assert sorted(path.name for path in tmp_path.iterdir() if ".bak-" in path.name) == []


def test_upgrade_that_would_orphan_rows_is_refused_and_rolled_back(tmp_path: Path) -> None:
    url, db = sqlite_file(tmp_path)
    command.upgrade(alembic_config(url), "0005")
    insert_rows(db)
    db.dispose()
    # An epoch of no experiment, as only a write with foreign keys off can leave.
    with sqlite3.connect(tmp_path / "service.db") as connection:
        connection.execute(
            "INSERT INTO epochs (experiment_id, epoch, loss, seconds, attempt, recorded_at) "
            "VALUES ('gone', 1, 0.5, 1.0, 1, '2026-12-01 10:00:00.000000')"
        )
    db = Database(url)
    with pytest.raises(
        MigrationRefused, match="1 row\\(s\\) of epochs refer to missing experiments"
    ):
        upgrade_to_head(url, db.engine)
    assert current_revision(db.engine) == "0005"
    assert "studies" not in sa.inspect(db.engine).get_table_names()  # 0006's DDL rolled back
    db.dispose()
    assert count(tmp_path / "service.db", "epochs") == len(ROWS["epochs"]) + 1


def test_a_sqlite_migration_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    """A second process migrating the same file waits for the first, then finds nothing to do;
    a deferred transaction would read the old revision and fail once the first committed."""
    _, db = sqlite_file(tmp_path)
    with (
        db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection,
        sqlite_schema_change(connection),
        closing(sqlite3.connect(tmp_path / "service.db", timeout=0)) as other,
        pytest.raises(sqlite3.OperationalError, match="locked"),
    ):
        other.execute("BEGIN IMMEDIATE")
    db.dispose()
