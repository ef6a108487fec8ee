"""Removing an experiment: its row and history, then its warm model and its files."""

from __future__ import annotations

from service.db import repository
from service.db.session import Database
from service.storage import ModelStore, experiment_prefix
from service.usecases.prediction import Predictions


def remove_experiment(
    *, experiment_id: str, db: Database, predictions: Predictions, store: ModelStore
) -> None:
    """A finished or cancelled experiment goes entirely; a queued or running one is NotDeletable."""
    with db.scope() as session:
        repository.delete_experiment(session, experiment_id)
    # Only after the commit: files deleted under a row that a failed commit kept would leave a
    # succeeded experiment that can no longer be served.
    predictions.forget(experiment_id)
    store.delete_prefix(experiment_prefix(experiment_id))
