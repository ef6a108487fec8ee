"""epochs.learning_rate: the optimizer's rate at the end of each epoch

Schedules and ReduceLROnPlateau change the rate while a net trains; the history shows it.
Epochs recorded before this revision have NULL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("epochs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("learning_rate", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("epochs", schema=None) as batch_op:
        batch_op.drop_column("learning_rate")
