"""Model references (`best`, `latest`, an alias, an experiment id) -> the model they name now."""

from __future__ import annotations

import threading
import time

from service.db import registry
from service.db.session import Database
from service.domain import ServableModel

# How long "best", "latest" or an alias keeps its answer: a new model or alias is served
# within this long, and a hot path of requests costs one database query a second, not each.
RESOLVE_TTL_SECONDS = 1.0


class ModelResolver:
    """Resolves references in the database and remembers each answer for RESOLVE_TTL_SECONDS."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._resolved: dict[str, tuple[float, ServableModel]] = {}
        self._lock = threading.Lock()

    def resolve(self, reference: str) -> ServableModel:
        """The model `reference` names: remembered, or looked up (ModelNotFound, ModelNotReady)."""
        model = self._remembered(reference, time.monotonic())
        return model if model is not None else self.refresh(reference)

    def refresh(self, reference: str) -> ServableModel:
        """The model `reference` names now, looked up whatever is remembered, and remembered."""
        now = time.monotonic()
        with self.db.scope() as session:
            model = registry.resolve(session, reference)
        with self._lock:
            self._resolved[reference] = (now + RESOLVE_TTL_SECONDS, model)
        return model

    def resolve_owned(self, reference: str, owner_id: str) -> ServableModel:
        """The model `reference` names among `owner_id`'s own (CLASS_READS=own): always looked
        up, since the answer is the reader's alone."""
        with self.db.scope() as session:
            return registry.resolve(session, reference, owner_id=owner_id)

    def recent(self, reference: str) -> ServableModel | None:
        """The model `reference` was resolved to within RESOLVE_TTL_SECONDS, or None: no query."""
        return self._remembered(reference, time.monotonic())

    def forget(self, experiment_id: str) -> None:
        """An experiment was deleted: every reference that named it is looked up again."""
        with self._lock:
            for reference, (_, model) in list(self._resolved.items()):
                if model.experiment_id == experiment_id:
                    del self._resolved[reference]

    def _remembered(self, reference: str, now: float) -> ServableModel | None:
        with self._lock:
            remembered = self._resolved.get(reference)
        if remembered is None or remembered[0] <= now:
            return None
        return remembered[1]
