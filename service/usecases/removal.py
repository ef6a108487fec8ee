"""Removing experiments: their rows and histories, then their warm models and their files."""

from __future__ import annotations

from collections.abc import Iterable

from service.db import repository
from service.db.session import Database
from service.storage import ModelStore, experiment_prefix
from service.usecases.prediction import Predictions


def remove_experiments(
    *, experiment_ids: Iterable[str], db: Database, predictions: Predictions, store: ModelStore
) -> None:
    """Each must have ended (NotDeletable names the first that has not); all rows go in one
    commit, so a study's trials go together or not at all."""
    ids = list(experiment_ids)
    with db.scope() as session:
        for experiment_id in ids:
            repository.delete_experiment(session, experiment_id)
    # Only after the commit: files deleted under a row that a failed commit kept would leave a
    # succeeded experiment that can no longer be served.
    for experiment_id in ids:
        predictions.forget(experiment_id)
        store.delete_prefix(experiment_prefix(experiment_id))
