"""experiments.delivered_at, idempotency keys, and model store keys instead of URIs

- `delivered_at`: when the queue was last handed the experiment (NULL: never), so the sweep
  re-delivers queued experiments whose delivery was lost, on a busy service too.
- `idempotency_key` + `request_digest`, unique per client: a retried POST /experiments returns
  the first experiment.
- `model_uri` now holds the model's key in the store (`experiments/<id>/model.keras`): an
  absolute URI broke serving as soon as MODELS_URL or MODELS_DIR moved. Existing URIs are cut
  down to their key; the downgrade cannot know the old store's URL and leaves keys as they are.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_START = "experiments/"


def upgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("request_digest", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ux_experiments_client_idempotency", ["client_id", "idempotency_key"], unique=True
        )
    experiments = sa.table("experiments", sa.column("id"), sa.column("model_uri"))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(experiments.c.id, experiments.c.model_uri).where(
            experiments.c.model_uri.is_not(None)
        )
    ).all()
    for experiment_id, uri in rows:
        start = uri.rfind(f"/{KEY_START}")
        if uri.startswith(KEY_START) or start < 0:
            continue  # already a key, or nothing we recognise: serving will say so
        connection.execute(
            sa.update(experiments)
            .where(experiments.c.id == experiment_id)
            .values(model_uri=uri[start + 1 :])
        )


def downgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_index("ux_experiments_client_idempotency")
        batch_op.drop_column("request_digest")
        batch_op.drop_column("idempotency_key")
        batch_op.drop_column("delivered_at")
