"""challenges and challenge_entries: a class challenge, its rules and its scored entries

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "challenges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("max_entries_per_person", sa.Integer(), nullable=True),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("split_seed", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "challenge_entries",
        sa.Column("experiment_id", sa.String(length=32), nullable=False),
        sa.Column("challenge_id", sa.String(length=32), nullable=False),
        sa.Column("entrant", sa.String(length=200), nullable=False),
        sa.Column("entrant_name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("public_score", sa.Float(), nullable=True),
        sa.Column("private_score", sa.Float(), nullable=True),
        sa.Column("sealed_test_loss", sa.Float(), nullable=True),
        sa.Column("sealed_test_accuracy", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["challenge_id"], ["challenges.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("experiment_id"),
    )
    op.create_index(
        "ix_challenge_entries_challenge_entrant",
        "challenge_entries",
        ["challenge_id", "entrant"],
    )


def downgrade() -> None:
    op.drop_index("ix_challenge_entries_challenge_entrant", table_name="challenge_entries")
    op.drop_table("challenge_entries")
    op.drop_table("challenges")
