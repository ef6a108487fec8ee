"""Store writes of an attempt are fenced: its own folder, published only while it holds the lease.

A stale attempt (its lease swept, a newer attempt running) can neither overwrite what the newer
attempt publishes nor delete what it uses, and restoring picks the newest readable checkpoint.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import keras
import pytest

from service.config import Settings
from service.db import leases
from service.db.session import Database
from service.domain import EpochRecord, utcnow
from service.storage import ModelStore, store_from_settings
from service.worker.context import TrainingContext
from tests.helpers import claim_in, create_queued

LEASE_SECONDS = 60.0


@pytest.fixture
def store(settings: Settings) -> ModelStore:
    return store_from_settings(settings)


def take_over(db: Database, experiment_id: str) -> int:
    """The sweep requeues the expired attempt and a newer one claims the job."""
    with db.scope() as session:
        leases.sweep(session, now=utcnow() + timedelta(seconds=LEASE_SECONDS + 1))
    return claim_in(db, experiment_id)


def context(
    settings: Settings, db: Database, store: ModelStore, experiment_id: str, attempt: int
) -> TrainingContext:
    return TrainingContext(
        settings=settings, db=db, store=store, experiment_id=experiment_id, attempt=attempt
    )


def model(units: int) -> keras.Model:
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units)])
    net.compile(optimizer="sgd", loss="mse")
    return net


def history(epochs: int, attempt: int) -> list[EpochRecord]:
    return [
        EpochRecord(
            epoch=epoch,
            loss=1.0,
            accuracy=0.5,
            val_loss=1.0,
            val_accuracy=0.5,
            seconds=1.0,
            attempt=attempt,
        )
        for epoch in range(1, epochs + 1)
    ]


def checkpoint_files(root: Path, experiment_id: str) -> list[str]:
    folder = root / "experiments" / experiment_id / "checkpoint"
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_a_stale_attempt_publishes_and_deletes_nothing_of_a_newer_one(
    settings: Settings, db: Database, store: ModelStore
) -> None:
    experiment_id = create_queued(db, max_attempts=5)
    stale = context(settings, db, store, experiment_id, claim_in(db, experiment_id))
    assert stale.epoch_finished(model(1), history(1, 1)[-1], history(1, 1))

    newer_attempt = take_over(db, experiment_id)
    newer = context(settings, db, store, experiment_id, newer_attempt)
    resumed = newer.checkpoints.restore()
    assert resumed is not None
    assert resumed.start_epoch == 1
    assert newer.epoch_finished(model(2), history(2, 2)[-1], history(2, 2))

    # The stale attempt wakes up and ends its next epoch: it is told it lost the lease, and
    # writes nothing a newer attempt reads.
    before = checkpoint_files(Path(settings.model_store_url), experiment_id)
    assert not stale.epoch_finished(model(1), history(2, 1)[-1], history(2, 1))
    assert stale.lost
    after = checkpoint_files(Path(settings.model_store_url), experiment_id)
    assert set(before) <= set(after), (before, after)  # nothing deleted
    assert "attempt-0002/epoch-0002.keras" in after

    restored = context(
        settings, db, store, experiment_id, take_over(db, experiment_id)
    ).checkpoints.restore()
    assert restored is not None
    assert [record.attempt for record in restored.history] == [2, 2]
    assert restored.model.layers[-1].units == 2  # the newer attempt's model


def test_an_unreadable_checkpoint_is_skipped_for_the_previous_good_one(
    settings: Settings, db: Database, store: ModelStore
) -> None:
    experiment_id = create_queued(db, max_attempts=5)
    first = context(settings, db, store, experiment_id, claim_in(db, experiment_id))
    assert first.epoch_finished(model(1), history(1, 1)[-1], history(1, 1))
    second = context(settings, db, store, experiment_id, take_over(db, experiment_id))
    assert second.epoch_finished(model(2), history(2, 2)[-1], history(2, 2))

    root = Path(settings.model_store_url) / "experiments" / experiment_id / "checkpoint"
    (root / "attempt-0002" / "epoch-0002.keras").write_bytes(b"not a keras file")
    third = context(settings, db, store, experiment_id, take_over(db, experiment_id))
    resumed = third.checkpoints.restore()
    assert resumed is not None
    assert resumed.start_epoch == 1
    assert resumed.model.layers[-1].units == 1

    (root / "attempt-0001" / "last.json").write_text("{truncated")
    assert third.checkpoints.restore() is None  # nothing readable left: a fresh start
