"""experiments record what makes them reproducible: spec hash, seed, versions, rerun_of

`spec_hash` and `seed` are written at submission; `python_version` and `numpy_version` join
the TensorFlow and Keras versions the worker reports; `rerun_of` names the experiment a rerun
repeats (no foreign key: a rerun outlives a deleted original and still says what it repeated).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spec_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("seed", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("python_version", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("numpy_version", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("rerun_of", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("rerun_of")
        batch_op.drop_column("numpy_version")
        batch_op.drop_column("python_version")
        batch_op.drop_column("seed")
        batch_op.drop_column("spec_hash")
