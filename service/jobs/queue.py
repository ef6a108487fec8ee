"""One Huey task, `train_experiment`, on SQLite (embedded) or Redis (scaled out).

The same code runs on both; `QUEUE_URL` chooses. A delivery is only a nudge: the worker
claims the experiment row before doing anything, so a duplicate or stale delivery is harmless,
and a lost one is put right by the sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey

log = logging.getLogger(__name__)

QUEUE_NAME = "mnist-lab"
TASK_NAME = "train_experiment"

Handler = Callable[[str], None]


def make_huey(queue_url: str) -> Huey:
    if queue_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(QUEUE_NAME, url=queue_url, results=False)
    if queue_url.startswith("sqlite:///"):
        path = Path(queue_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # strict_fifo keeps jobs in submission order even when several slots dequeue at once.
        return SqliteHuey(QUEUE_NAME, filename=str(path), results=False, strict_fifo=True)
    if queue_url == "memory://":
        return MemoryHuey(QUEUE_NAME, results=False)
    raise ValueError(
        f"QUEUE_URL={queue_url!r} is not supported; use sqlite:///path/queue.db or redis://host:6379/0"
    )


def _no_handler(experiment_id: str) -> None:
    raise RuntimeError("this process only enqueues; run `python -m service worker` to train")


class JobQueue:
    """Enqueue on the API side; on a worker, the handler runs each delivered experiment id."""

    def __init__(self, queue_url: str) -> None:
        self.huey = make_huey(queue_url)
        self.handler: Handler = _no_handler
        self._task = self.huey.task(name=TASK_NAME)(self._deliver)

    def _deliver(self, experiment_id: str) -> None:
        self.handler(experiment_id)

    def enqueue(self, experiment_id: str) -> None:
        self._task(experiment_id)
        log.debug("queued experiment %s", experiment_id)  # usecases.submission says it for people

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def flush(self) -> None:
        """Drop every pending delivery (tests; the sweep re-delivers what still matters)."""
        self.huey.flush()
