"""read indexes: keyset pages of the experiment list, and the reads every list page makes

The list's sort indexes end with the id, the tie-break of its keyset pages, so that a page
after a cursor is one index range (SQLite's indexes otherwise end with the rowid, not the id).
An owner's list gets its own (owner_id, created_at, id). The time estimates on every list
page read the newest epochs (by recorded_at) and the newest first-attempt successes (by status
and finished_at), and fair share's order of the queue reads the attempts still running or
ended lately (by ended_at): without these three indexes each scanned its whole table.

Only indexes: no row changes, no table rebuilt.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name: (table, columns now, columns before 0012; None: new)
INDEXES: dict[str, tuple[str, list[str], list[str] | None]] = {
    "ix_experiments_created": ("experiments", ["created_at", "id"], ["created_at"]),
    "ix_experiments_status_created": (
        "experiments",
        ["status", "created_at", "id"],
        ["status", "created_at"],
    ),
    "ix_experiments_test_accuracy": ("experiments", ["test_accuracy", "id"], ["test_accuracy"]),
    "ix_experiments_owner_created": ("experiments", ["owner_id", "created_at", "id"], None),
    "ix_experiments_status_finished": ("experiments", ["status", "finished_at"], None),
    "ix_epochs_recorded_at": ("epochs", ["recorded_at"], None),
    "ix_attempts_ended_at": ("attempts", ["ended_at"], None),
}


def upgrade() -> None:
    for name, (table, columns, before) in INDEXES.items():
        if before is not None:
            op.drop_index(name, table_name=table)
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _, before) in INDEXES.items():
        op.drop_index(name, table_name=table)
        if before is not None:
            op.create_index(name, table, before)
