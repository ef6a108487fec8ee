"""Model references (`best`, `latest`, an alias, an experiment id) -> the model they name now."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from service.db import registry
from service.db.session import Database
from service.domain import ServableModel
from service.errors import ModelNotFound, ModelNotReady

log = logging.getLogger(__name__)

# How long "best", "latest" or an alias keeps its answer: a new model or alias is served
# within this long, and a hot path of requests costs one database query a second, not each.
RESOLVE_TTL_SECONDS = 1.0
# An experiment id names the same model for as long as the experiment exists (its name and
# accuracy, all an answer shows of it, never change), so past the TTL its answer is still
# given, for at most this long, while one background query looks it up again. A student asking
# for their own model every second or so was otherwise always past the TTL: a query on a
# worker thread each time, twice the event loop's latency (bench/class_load.py). A deleted
# experiment is forgotten at once through the change feed; the query is the backstop.
ID_GRACE_SECONDS = 10.0


class ModelResolver:
    """Resolves references in the database and remembers each answer for RESOLVE_TTL_SECONDS."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._resolved: dict[str, tuple[float, ServableModel]] = {}
        self._lock = threading.Lock()
        self._refreshing: set[str] = set()
        self._background: ThreadPoolExecutor | None = None
        self._closed = False

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
        """The model `reference` was resolved to within RESOLVE_TTL_SECONDS (an experiment id:
        within ID_GRACE_SECONDS after that, looked up again in the background), or None: no
        query on the caller's thread."""
        now = time.monotonic()
        with self._lock:
            remembered = self._resolved.get(reference)
        if remembered is None:
            return None
        expires, model = remembered
        if expires > now:
            return model
        if reference != model.experiment_id or now - expires > ID_GRACE_SECONDS:
            return None
        self._refresh_in_background(reference)
        return model

    def wait_refreshed(self, timeout: float) -> bool:
        """Wait until no background lookup is left; False if `timeout` passed first (tests)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._refreshing:
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def close(self) -> None:
        """Stop looking up in the background (a lookup under way finishes first)."""
        with self._lock:
            self._closed = True
            background = self._background
        if background is not None:
            background.shutdown(wait=True)

    def _refresh_in_background(self, reference: str) -> None:
        with self._lock:
            if self._closed or reference in self._refreshing:
                return
            self._refreshing.add(reference)
            if self._background is None:
                self._background = ThreadPoolExecutor(1, thread_name_prefix="model-resolver")
            background = self._background
        background.submit(self._refresh_quietly, reference)

    def _refresh_quietly(self, reference: str) -> None:
        try:
            self.refresh(reference)
        except (ModelNotFound, ModelNotReady):  # deleted: its requests say so from now on
            with self._lock:
                self._resolved.pop(reference, None)
        except Exception:  # a database hiccup: past the grace the request path looks it up
            log.exception("looking up the model of %r again failed", reference)
        finally:
            with self._lock:
                self._refreshing.discard(reference)

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
