"""experiment_tags.created_at: a tag's page in created order from one index range

A tag's page of the list (and its compact CSV) found the tag's 1,000 runs in experiment_tags,
looked each up in experiments for its created_at and sorted them all to keep 200 (4 ms of a
17 ms CSV page at 100,000 experiments, SQLite's `USE TEMP B-TREE FOR ORDER BY`). With the
experiment's created_at beside each tag, and the index (tag, created_at, experiment_id), the
page is the first rows of one index range, at any depth by cursor.

The column is filled from experiments here and by every insert after; it is nullable because
SQLite adds a NOT NULL column only by rebuilding the table. The index replaces the one on tag
alone, which it begins with.

Only a column and an index added: no table rebuilt.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "experiment_tags", sa.Column("created_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE experiment_tags SET created_at = "
        "(SELECT experiments.created_at FROM experiments "
        "WHERE experiments.id = experiment_tags.experiment_id)"
    )
    op.create_index(
        "ix_experiment_tags_tag_created", "experiment_tags", ["tag", "created_at", "experiment_id"]
    )
    op.drop_index("ix_experiment_tags_tag", table_name="experiment_tags")


def downgrade() -> None:
    op.create_index("ix_experiment_tags_tag", "experiment_tags", ["tag"])
    op.drop_index("ix_experiment_tags_tag_created", table_name="experiment_tags")
    if op.get_bind().dialect.name == "sqlite":  # 3.35+ drops a column in place, no rebuild
        op.execute("ALTER TABLE experiment_tags DROP COLUMN created_at")
    else:
        op.drop_column("experiment_tags", "created_at")
