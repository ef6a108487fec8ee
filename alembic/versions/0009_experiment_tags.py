"""experiment_tags: short labels that group experiments (a class, a question)

One row per (experiment, tag), so that the list filters by tag with an index on every backend.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("experiment_id", "tag"),
    )
    op.create_index("ix_experiment_tags_tag", "experiment_tags", ["tag"])


def downgrade() -> None:
    op.drop_index("ix_experiment_tags_tag", table_name="experiment_tags")
    op.drop_table("experiment_tags")
