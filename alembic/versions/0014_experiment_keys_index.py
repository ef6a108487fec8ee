"""experiments (id, client_id, created_at, test_accuracy): what reads look up by id, narrow

Two reads find experiments by id and want a column or two of each, not the row, whose spec and
summary JSON make it wide: a tag's page of the list (the tag's runs by id, sorted by created_at
or test_accuracy, then the page's rows) and fair share's usage (each recent attempt's
experiment, for its client). With this index both read index entries only; before, a tag's
page read and sorted all 1,000 rows of the tag (16 ms at 100,000 experiments), and fair share
read a row per attempt.

Only an index: no row changes, no table rebuilt.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["id", "client_id", "created_at", "test_accuracy"]


def upgrade() -> None:
    op.create_index("ix_experiments_id_keys", "experiments", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_experiments_id_keys", table_name="experiments")
