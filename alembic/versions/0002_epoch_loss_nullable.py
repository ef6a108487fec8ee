"""epochs.loss may be NULL: it stands for a loss that is not a number

A diverged epoch has a NaN loss. SQLite stores NaN as NULL, so the NOT NULL column refused
the very epoch that explains why training failed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# On SQLite, batch mode recreates the table: the service copies the file aside first.
REBUILDS_TABLES = True


def upgrade() -> None:
    with op.batch_alter_table("epochs", schema=None) as batch_op:
        batch_op.alter_column("loss", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    # The old schema cannot hold these epochs on SQLite; they are the ones a downgrade loses.
    op.execute("DELETE FROM epochs WHERE loss IS NULL")
    with op.batch_alter_table("epochs", schema=None) as batch_op:
        batch_op.alter_column("loss", existing_type=sa.Float(), nullable=False)
