"""Loading the model a name moves to before anyone asks for it, answering from the one it
named before meanwhile.

In a class, `latest` moves at every finished training and `best` or an alias now and then.
Loading a model costs a few hundred milliseconds of CPU; on the request path every request for
that name waited on it (a class of thirty saw /predict p99 590 ms). So each API process keeps
one background thread that, when the change feed shows a model succeeded or was deleted (or
an alias was moved here), looks `best`, `latest` and the aliases asked for again, and loads
what they name now, one model at a time; then every other model that succeeded, oldest first
(in a burst of finishes each model was `latest` for a moment, or never was when two finished
between two reads of the feed, and its owner asks for it next).

Until the new model is warm, a name that moved answers from the model it named before, if that
one is still warm, for at most `max_stale_seconds`; the answer names the model that gave it.
An experiment id always answers from exactly that model. A background load that fails is
logged and left to the request path, which loads it (or says why it cannot) as without this.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from service.domain import BEST, LATEST, ServableModel
from service.errors import ModelNotFound, ModelNotReady
from service.serving.loader import ModelLoader
from service.serving.resolver import ModelResolver

log = logging.getLogger(__name__)

# How long a name that moved may answer from the model it named before: long enough for a load
# behind one or two others on a busy machine, short enough that nobody is misled for long.
MAX_STALE_SECONDS = 10.0
# Failed background loads remembered (to leave their model to the request path); past this,
# the oldest are forgotten, which costs at most one more background try each.
MAX_FAILED = 1000
CLOSE_SECONDS = 30.0


@dataclass
class _Name:
    """Where one name (`best`, `latest`, an alias) stands in this process."""

    target: ServableModel
    """What it names now, as last resolved."""
    answer: ServableModel | None
    """The last model that answered for it warm (may be `target`)."""
    stale_since: float | None
    """When it first named a model that was not warm, since it last answered up to date."""


class ModelPreloader:
    """One thread that loads the models names move to; `model_for` says which model answers."""

    def __init__(
        self,
        *,
        loader: ModelLoader,
        resolver: ModelResolver,
        max_stale_seconds: float = MAX_STALE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loader = loader
        self.resolver = resolver
        self.max_stale_seconds = max_stale_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._names: dict[str, _Name] = {}
        self._queued: dict[str, ServableModel] = {}  # by experiment id, oldest first
        self._failed: dict[str, float] = {}  # experiment id: when its background load failed
        self._to_resolve: set[str] = set()
        self._succeeded: dict[str, None] = {}  # experiment ids to look up and queue, in order
        self._loading: str | None = None  # the experiment id whose model the thread loads
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread, and have it load what `best` and `latest` name now."""
        self._thread = threading.Thread(target=self._run, name="model-preloader", daemon=True)
        self._thread.start()
        self.models_changed()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(CLOSE_SECONDS)

    # -- what the request path asks ------------------------------------------------------------

    def model_for(self, reference: str, model: ServableModel) -> ServableModel:
        """The model to answer `reference` with, now that it resolved to `model`.

        `model` itself when it is warm, when `reference` is its experiment id, when its
        background load failed, or when no earlier model of this name is warm; else (the name
        moved and its new model is not loaded yet) the model it named before, for at most
        `max_stale_seconds` after it moved, while `model` loads in the background.
        """
        if reference == model.experiment_id:
            return model  # an id means that model, never another
        now = self.clock()
        with self._lock:
            if self.loader.is_warm(model):
                self._names[reference] = _Name(target=model, answer=model, stale_since=None)
                self._failed.pop(model.experiment_id, None)
                return model
            name = self._names.get(reference)
            if name is None:
                name = self._names[reference] = _Name(target=model, answer=None, stale_since=now)
            name.target = model
            if name.stale_since is None:
                name.stale_since = now
            self._queue(model)
            previous = name.answer
            if (
                previous is None
                or model.experiment_id in self._failed
                or now - name.stale_since > self.max_stale_seconds
            ):
                return model
        return previous if self.loader.is_warm(previous) else model

    # -- what tells it to look again -----------------------------------------------------------

    def models_changed(self, succeeded: Iterable[str] = ()) -> None:
        """A model succeeded or was deleted: look `best`, `latest` and the aliases asked for
        in this process up again, and queue the models of the experiments that `succeeded`
        after what names name. Cheap and non-blocking: the change feed calls it on the loop."""
        with self._wake:
            self._to_resolve.update((BEST, LATEST, *self._names))
            self._succeeded.update(dict.fromkeys(succeeded))
            self._wake.notify()

    def alias_moved(self, alias: str) -> None:
        """An alias was pointed at a model here: load it, whether or not it was asked for yet."""
        with self._wake:
            self._to_resolve.add(alias)
            self._wake.notify()

    def forget(self, experiment_id: str) -> None:
        """An experiment was deleted: never answer from it, never load it."""
        with self._lock:
            self._queued.pop(experiment_id, None)
            self._failed.pop(experiment_id, None)
            for reference, name in list(self._names.items()):
                if name.target.experiment_id == experiment_id:
                    del self._names[reference]
                elif name.answer is not None and name.answer.experiment_id == experiment_id:
                    name.answer = None

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is left to resolve or load; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._to_resolve or self._succeeded or self._queued or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(left)
        return True

    # -- the thread ----------------------------------------------------------------------------

    def _queue(self, model: ServableModel) -> None:
        """Called holding the lock: queue the model unless it is queued, loading or failed."""
        experiment_id = model.experiment_id
        if experiment_id == self._loading or experiment_id in self._queued:
            return
        if experiment_id not in self._failed:
            self._queued[experiment_id] = model
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._closed or self._to_resolve or self._succeeded or self._queued):
                    self._busy = False
                    self._wake.notify_all()  # wait_idle
                    self._wake.wait()
                if self._closed:
                    return
                self._busy = True
                references, self._to_resolve = self._to_resolve, set()
                succeeded, self._succeeded = list(self._succeeded), {}
            for reference in sorted(references):
                self._resolve(reference)
            for experiment_id in succeeded:
                self._queue_succeeded(experiment_id)
            model = self._next()
            if model is not None:
                self._load(model)

    def _resolve(self, reference: str) -> None:
        try:
            model = self.resolver.refresh(reference)
        except (ModelNotFound, ModelNotReady):
            with self._lock:
                self._names.pop(reference, None)  # nothing to serve, or an alias deleted
            return
        except Exception:  # a database hiccup: the request path resolves it as before
            log.exception("the model preloader could not look up %r", reference)
            return
        self.model_for(reference, model)

    def _queue_succeeded(self, experiment_id: str) -> None:
        """Queue a model that succeeded (the request path would load it for its owner's first
        prediction); the lookup also lets that prediction skip the database."""
        try:
            model = self.resolver.refresh(experiment_id)
        except (ModelNotFound, ModelNotReady):
            return  # deleted since
        except Exception:  # a database hiccup: the request path loads it as before
            log.exception("the model preloader could not look up %r", experiment_id)
            return
        with self._lock:
            named = {name.target.experiment_id for name in self._names.values()}
            # A cache with no room beside what names name would evict one of those for it.
            if not self.loader.is_warm(model) and self.loader.cache.capacity > len(named) + 1:
                self._queue(model)

    def pending(self) -> list[str]:
        """The experiment ids queued to load, in the order they will be."""
        with self._lock:
            return self._in_order()

    def _next(self) -> ServableModel | None:
        with self._lock:
            order = self._in_order()
            self._loading = order[0] if order else None
            return self._queued.pop(order[0]) if order else None

    def _in_order(self) -> list[str]:
        """Called holding the lock. What names name now first, oldest first; then the models
        names moved past before they were loaded (a burst of finishes): each became `latest`
        for a moment, and its owner is about to ask for it by id."""
        named = {name.target.experiment_id for name in self._names.values()}
        return sorted(self._queued, key=lambda experiment_id: experiment_id not in named)

    def _load(self, model: ServableModel) -> None:
        failed = False
        try:
            self.loader.predictor(model, by="preloader")
        except Exception as error:  # the request path will try again and say what is wrong
            failed = True
            log.warning(
                "preloading the model of experiment %s failed (%s: %s); its requests load it",
                model.experiment_id,
                type(error).__name__,
                error,
            )
        with self._lock:
            self._loading = None
            if failed:
                self._failed[model.experiment_id] = self.clock()
                while len(self._failed) > MAX_FAILED:
                    del self._failed[next(iter(self._failed))]
