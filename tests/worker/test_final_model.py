"""An attempt's model is its last checkpoint's file when nothing changed the model after that
checkpoint (a one-epoch trial saves its model once, not twice), and is saved anew when a
callback did change it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from service.config import Settings
from service.db import insight, repository
from service.db.session import Database
from service.domain import EpochRecord, Status
from service.ml.data import load_mnist, split
from service.ml.evaluation import evaluate_model
from service.storage import model_key, store_from_settings
from service.worker import attempt
from service.worker.context import TrainingContext
from service.worker.protocol import EXIT_OK
from tests.factories import tiny_spec
from tests.helpers import MNIST_PATH, claim_in

RATE = 0.001
# Halves the rate at every epoch's end but the first (which sets the best loss so far).
SHRINK_EVERY_EPOCH = {"factor": 0.5, "patience": 0, "min_delta": 10.0}


def small_model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(RATE), loss="mse")
    model.fit(np.ones((8, 4)), np.ones((8, 2)), verbose=0)  # the optimizer's moments exist
    return model


def record(epoch: int) -> EpochRecord:
    return EpochRecord(epoch, 1.0, 0.5, 1.0, 0.5, 1.0, attempt=1)


@pytest.fixture
def context(settings: Settings, db: Database) -> TrainingContext:
    experiment_id = create(db, tiny_spec())
    return TrainingContext(
        settings=settings,
        db=db,
        store=store_from_settings(settings),
        experiment_id=experiment_id,
        attempt=claim_in(db, experiment_id),
    )


def test_the_checkpoint_file_is_the_model_until_the_model_changes(
    context: TrainingContext,
) -> None:
    model = small_model()
    assert context.checkpoints.unchanged_file(model) is None  # nothing checkpointed yet
    assert context.epoch_finished(model, record(1), [record(1)])
    found = context.checkpoints.unchanged_file(model)
    assert found is not None
    reloaded = keras.models.load_model(found)
    for mine, theirs in zip(model.variables, reloaded.variables, strict=True):
        assert np.array_equal(mine, theirs)

    assert context.checkpoints.unchanged_file(small_model()) is None  # another model
    model.optimizer.learning_rate.assign(RATE / 2)  # as ReduceLROnPlateau does after
    assert context.checkpoints.unchanged_file(model) is None
    model.optimizer.learning_rate.assign(RATE)
    assert context.checkpoints.unchanged_file(model) == found
    model.layers[-1].bias.assign([1.0, 2.0])  # as EarlyStopping's best weights
    assert context.checkpoints.unchanged_file(model) is None


def create(db: Database, spec: dict[str, Any]) -> str:
    with db.scope() as session:
        return repository.create_experiment(
            session,
            name="final-model",
            description=None,
            spec={key: value for key, value in spec.items() if key != "name"},
            summary={},
            client_id="tests",
            max_attempts=1,
        ).id


def train_one(
    settings: Settings, db: Database, spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[str, int]:
    """Run one attempt in this process; the experiment and how many times a model was saved."""
    monkeypatch.setattr(attempt, "configure_tensorflow", lambda settings: None)  # this process's
    saves = []
    save = keras.Model.save
    monkeypatch.setattr(
        keras.Model, "save", lambda model, *a, **k: saves.append(save(model, *a, **k))
    )
    experiment_id = create(db, spec)
    assert attempt.run(experiment_id, claim_in(db, experiment_id), settings) == EXIT_OK
    with db.scope() as session:
        assert repository.get_experiment(session, experiment_id).status is Status.SUCCEEDED
    return experiment_id, len(saves)


def stored_model(settings: Settings, experiment_id: str, tmp_path: Path) -> keras.Model:
    store = store_from_settings(settings)
    return keras.models.load_model(store.get_file(model_key(experiment_id), tmp_path / "m.keras"))


def test_a_one_epoch_trial_saves_its_model_once(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    experiment_id, saves = train_one(settings, db, tiny_spec(epochs=1), monkeypatch)
    assert saves == 1  # the checkpoint; the model is its file
    model = stored_model(settings, experiment_id, tmp_path)
    data = split(load_mnist(MNIST_PATH), validation_size=500)
    with db.scope() as session:
        state = insight.evaluation_state(session, experiment_id)
    assert state is not None
    assert evaluate_model(model, data.x_test, data.y_test) == state.evaluation


def test_a_model_a_callback_changed_after_its_checkpoint_is_saved_again(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The rate halves at the end of the second epoch, after that epoch's checkpoint.
    spec = tiny_spec(epochs=2, reduce_lr_on_plateau=SHRINK_EVERY_EPOCH)
    spec["compile"]["optimizer"] = {"type": "Adam", "learning_rate": RATE}
    experiment_id, saves = train_one(settings, db, spec, monkeypatch)
    assert saves == 3  # two checkpoints, then the model
    model = stored_model(settings, experiment_id, tmp_path)
    assert float(model.optimizer.learning_rate) == pytest.approx(RATE / 2)
