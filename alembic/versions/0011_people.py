"""people: the class's students and teachers, their token digests; owners of experiments,
studies and aliases

A person's token is shown once; only its sha256 is kept (`token_hash`, NULL once revoked). Work
made before anyone was added, or by the API_TOKEN holder, has no owner (NULL).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNED = ("experiments", "studies", "model_aliases")


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_people_name", "people", ["name"], unique=True)
    op.create_index("ux_people_token_hash", "people", ["token_hash"], unique=True)
    for table in OWNED:
        # A plain ADD COLUMN, never batch mode: on SQLite that would copy `experiments` and
        # lose the change-log triggers of 0008 (and Alembic adds no foreign key there).
        if op.get_bind().dialect.name == "sqlite":
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN owner_id VARCHAR(32) REFERENCES people (id)"
            )
        else:
            op.add_column(
                table,
                sa.Column(
                    "owner_id", sa.String(length=32), sa.ForeignKey("people.id"), nullable=True
                ),
            )
        op.create_index(f"ix_{table}_owner_id", table, ["owner_id"])


def downgrade() -> None:
    for table in OWNED:
        op.drop_index(f"ix_{table}_owner_id", table_name=table)
        if op.get_bind().dialect.name == "sqlite":  # 3.35+ drops a column in place
            op.execute(f"ALTER TABLE {table} DROP COLUMN owner_id")
        else:
            op.drop_column(table, "owner_id")
    op.drop_index("ux_people_token_hash", table_name="people")
    op.drop_index("ux_people_name", table_name="people")
    op.drop_table("people")
