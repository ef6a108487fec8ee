"""experiments.kernels: whose kernels a training ran on, TensorFlow's or XLA's

`TRAINING_PATH=xla` trains with XLA's kernels, whose arithmetic differs from TensorFlow's in
the last digits. Recorded beside the library versions, a rerun under the other path is
explained by it and the exported notebook compiles the same way. Experiments trained before
this revision have NULL (they all ran on TensorFlow's kernels: the only path then).

Only a column added: no table rebuilt.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("experiments", sa.Column("kernels", sa.String(length=40), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # 3.35+ drops a column in place, no rebuild
        op.execute("ALTER TABLE experiments DROP COLUMN kernels")
    else:
        op.drop_column("experiments", "kernels")
