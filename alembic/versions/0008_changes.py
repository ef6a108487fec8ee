"""changes: an ordered log of status changes and epochs, written by triggers, for event streams

Every insert into `experiments`, every change of its `status` or `cancel_requested`, every
delete, and every recorded epoch appends one row here, in the writer's own transaction, so
the log is complete whichever process (API, worker on another machine) made the change. The
row's `id` orders the log: SQLite serialises writers, and on PostgreSQL the trigger takes one
transaction-scoped advisory lock before it draws an id, so ids become visible in id order and
a reader that remembers the last id it saw never skips one committed later.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The payloads, one expression per backend; the service reads them in service/db/changes.py.
_STATUS_FIELDS = (
    "'status', NEW.status, 'name', NEW.name, 'attempt', NEW.attempt, "
    "'cancel_requested', NEW.cancel_requested, 'test_accuracy', NEW.test_accuracy, "
    "'test_loss', NEW.test_loss, 'error', NEW.error"
)
_EPOCH_FIELDS = (
    "'epoch', NEW.epoch, 'loss', NEW.loss, 'accuracy', NEW.accuracy, "
    "'val_loss', NEW.val_loss, 'val_accuracy', NEW.val_accuracy, "
    "'seconds', NEW.seconds, 'learning_rate', NEW.learning_rate, 'attempt', NEW.attempt"
)
_STATUS_CHANGED = "OLD.status IS NOT NEW.status OR OLD.cancel_requested IS NOT NEW.cancel_requested"

_SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER changes_experiment_insert AFTER INSERT ON experiments BEGIN
        INSERT INTO changes (experiment_id, kind, payload)
        VALUES (NEW.id, 'status', json_object({_STATUS_FIELDS}));
    END""",
    f"""CREATE TRIGGER changes_experiment_update AFTER UPDATE ON experiments
    WHEN {_STATUS_CHANGED} BEGIN
        INSERT INTO changes (experiment_id, kind, payload)
        VALUES (NEW.id, 'status', json_object({_STATUS_FIELDS}));
    END""",
    """CREATE TRIGGER changes_experiment_delete AFTER DELETE ON experiments BEGIN
        INSERT INTO changes (experiment_id, kind, payload) VALUES (OLD.id, 'deleted', '{}');
    END""",
    f"""CREATE TRIGGER changes_epoch_insert AFTER INSERT ON epochs BEGIN
        INSERT INTO changes (experiment_id, kind, payload)
        VALUES (NEW.experiment_id, 'epoch', json_object({_EPOCH_FIELDS}));
    END""",
)
_SQLITE_DROPS = (
    "DROP TRIGGER IF EXISTS changes_experiment_insert",
    "DROP TRIGGER IF EXISTS changes_experiment_update",
    "DROP TRIGGER IF EXISTS changes_experiment_delete",
    "DROP TRIGGER IF EXISTS changes_epoch_insert",
)

# Any constant works as the lock's key, as long as nothing else uses it.
_ORDER_LOCK = "pg_advisory_xact_lock(7243006)"
_PG_TRIGGERS = (
    f"""CREATE FUNCTION changes_experiment() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            PERFORM {_ORDER_LOCK};
            INSERT INTO changes (experiment_id, kind, payload) VALUES (OLD.id, 'deleted', '{{}}');
            RETURN OLD;
        END IF;
        IF TG_OP = 'UPDATE' AND NOT ({_STATUS_CHANGED.replace("IS NOT", "IS DISTINCT FROM")}) THEN
            RETURN NEW;  -- heartbeats and the like: not a change anyone watches
        END IF;
        PERFORM {_ORDER_LOCK};
        INSERT INTO changes (experiment_id, kind, payload)
        VALUES (NEW.id, 'status', json_build_object({_STATUS_FIELDS})::text);
        RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    f"""CREATE FUNCTION changes_epoch() RETURNS trigger AS $$
    BEGIN
        PERFORM {_ORDER_LOCK};
        INSERT INTO changes (experiment_id, kind, payload)
        VALUES (NEW.experiment_id, 'epoch', json_build_object({_EPOCH_FIELDS})::text);
        RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER changes_experiment AFTER INSERT OR UPDATE OR DELETE ON experiments
    FOR EACH ROW EXECUTE FUNCTION changes_experiment()""",
    """CREATE TRIGGER changes_epoch AFTER INSERT ON epochs
    FOR EACH ROW EXECUTE FUNCTION changes_epoch()""",
)
_PG_DROPS = (
    "DROP TRIGGER IF EXISTS changes_experiment ON experiments",
    "DROP TRIGGER IF EXISTS changes_epoch ON epochs",
    "DROP FUNCTION IF EXISTS changes_experiment()",
    "DROP FUNCTION IF EXISTS changes_epoch()",
)


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        ),
        # AUTOINCREMENT: SQLite never reuses the id of a deleted last row, so ids only grow.
        sqlite_autoincrement=True,
    )
    op.create_index("ix_changes_experiment_id", "changes", ["experiment_id", "id"])
    triggers = _SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else _PG_TRIGGERS
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    drops = _SQLITE_DROPS if op.get_bind().dialect.name == "sqlite" else _PG_DROPS
    for statement in drops:
        op.execute(statement)
    op.drop_index("ix_changes_experiment_id", table_name="changes")
    op.drop_table("changes")
