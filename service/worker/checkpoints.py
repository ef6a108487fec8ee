"""An attempt's checkpoints: the model and the history so far, one per finished epoch.

Each is uploaded to the attempt's own folder in the store, then published (`last.json`) in a
transaction that holds the attempt's fence: a crash between leaves the old pair, and an attempt
that lost its lease publishes nothing. A later attempt resumes from the newest checkpoint that
can be read; an unreadable one is skipped for the previous good one, or a fresh start.

The last checkpoint's local file is also the attempt's model when nothing changed the model
after it (`unchanged_file`): a one-epoch trial then saves its model once, not twice.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.orm import Session

from service.db import leases
from service.domain import EpochRecord
from service.storage import ModelStore, checkpoint_attempts, checkpoint_key, checkpoint_meta_key

if TYPE_CHECKING:  # Keras loads in the training process only, when it trains
    from service.ml.train import Resume

log = logging.getLogger("service.training")

# What a checkpoint that cannot be used raises while it is read: skip it, never fail the job.
UNREADABLE = (FileNotFoundError, ValueError, KeyError, TypeError, zipfile.BadZipFile)


class Checkpoints:
    """One attempt's checkpoints: it saves its own, and resumes from any attempt's."""

    def __init__(
        self,
        *,
        store: ModelStore,
        experiment_id: str,
        attempt: int,
        local_dir: Path,
        transaction: Callable[[Callable[[Session], bool]], bool],
    ) -> None:
        self.store = store
        self.experiment_id = experiment_id
        self.attempt = attempt
        self.local_dir = local_dir
        self._transaction = transaction
        self._published: str | None = None
        self._saved: tuple[Any, list[np.ndarray]] | None = None
        """The model of the last checkpoint and every number it saved (`unchanged_file`)."""

    def save(self, model: Any, history: list[EpochRecord]) -> bool:
        """Upload the model to this attempt's folder, then publish it under the fence.
        False when the attempt lost its lease."""
        from service.ml.session import save_model

        epoch = len(history)
        local = self.local_dir / "checkpoint.keras"
        self._saved = None
        save_model(model, local)
        saved = (model, _saved_numbers(model))
        key = checkpoint_key(self.experiment_id, self.attempt, epoch)
        self.store.put_file(local, key)
        meta = {
            "attempt": self.attempt,
            "model": key,
            "history": [record.__dict__ for record in history],
        }

        def publish(session: Session) -> bool:
            # The fence holds the row's lock until this transaction commits: no sweep or newer
            # claim can come between the check and the publication.
            if not leases.holds(session, experiment_id=self.experiment_id, attempt=self.attempt):
                return False
            self.store.write_json(checkpoint_meta_key(self.experiment_id, self.attempt), meta)
            return True

        if not self._transaction(publish):
            return False
        if self._published is not None:
            # Only ever this attempt's own previous file, once `last.json` names the new one.
            self.store.delete_prefix(self._published)
        self._published = key
        self._saved = saved
        return True

    def unchanged_file(self, model: Any) -> Path | None:
        """The local file of this attempt's last checkpoint if it holds `model` as it is now,
        else None: a callback may have changed it after the checkpoint (ReduceLROnPlateau's
        rate, EarlyStopping's best weights), or it was never checkpointed here."""
        if self._saved is None or self._saved[0] is not model:
            return None
        now = _saved_numbers(model)
        then = self._saved[1]
        if len(now) != len(then) or not all(map(np.array_equal, now, then)):
            return None
        return self.local_dir / "checkpoint.keras"

    def restore(self) -> Resume | None:
        """The newest published checkpoint that can be read (attempts newest first); None when
        there is none."""
        for attempt in checkpoint_attempts(self.store, self.experiment_id):
            meta_key = checkpoint_meta_key(self.experiment_id, attempt)
            try:
                return self._read(meta_key)
            except UNREADABLE as error:
                log.warning(
                    "experiment %s: skipping the unreadable checkpoint of attempt %s (%s: %s)",
                    self.experiment_id,
                    attempt,
                    type(error).__name__,
                    error,
                )
        return None

    def _read(self, meta_key: str) -> Resume:
        import keras

        from service.ml.train import Resume

        meta = self.store.read_json(meta_key)
        history = [EpochRecord(**record) for record in meta["history"]]
        local = self.store.get_file(meta["model"], self.local_dir / "restored.keras")
        return Resume(model=keras.models.load_model(local), history=history)


def _saved_numbers(model: Any) -> list[np.ndarray]:
    """Copies of every variable `model.save` writes: the model's (its seed generators' among
    them), its optimizer's (the learning rate, the step, the moments) and its metrics'. The
    rest of the file (the architecture, the compile arguments) a callback cannot change."""
    optimizer = [] if model.optimizer is None else model.optimizer.variables
    variables = [*model.variables, *optimizer, *model.metrics_variables]
    return [np.array(variable) for variable in variables]
