"""Deleting finished experiments: their rows, their warm models, their files in the store."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from service.db import repository
from service.storage import experiment_prefix

if TYPE_CHECKING:  # the runtime loads TensorFlow; a worker's main process must not
    from service.runtime import Runtime


def delete_experiments(runtime: Runtime, experiment_ids: Iterable[str]) -> None:
    """Each must have ended (a 409 names the first that has not); all rows go in one commit."""
    ids = list(experiment_ids)
    with runtime.db.scope() as session:
        for experiment_id in ids:
            repository.delete_experiment(session, experiment_id)
    for experiment_id in ids:
        runtime.predictions.forget(experiment_id)
        runtime.store.delete_prefix(experiment_prefix(experiment_id))
