"""Two Huey tasks, `train_experiment` and `evaluate_experiment`, on SQLite or Redis.

The same code runs on both; `QUEUE_URL` chooses. A delivery is only a nudge: the worker
claims the experiment row before doing anything, so a duplicate or stale delivery is harmless,
and a lost one is put right by the sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from redis import ConnectionPool

if TYPE_CHECKING:
    from service.config import Settings

log = logging.getLogger(__name__)

QUEUE_NAME = "mnist-lab"
TASK_NAME = "train_experiment"
EVALUATION_TASK_NAME = "evaluate_experiment"

Handler = Callable[[str], None]


def make_huey(
    queue_url: str,
    *,
    connect_timeout: float | None = None,
    socket_timeout: float | None = None,
) -> Huey:
    """The Huey for the URL; on Redis, connects and commands bounded when asked (a blocking
    dequeue waits at most Huey's one-second read timeout, well inside `socket_timeout`)."""
    if queue_url.startswith(("redis://", "rediss://", "unix://")):
        pool = ConnectionPool.from_url(
            queue_url, socket_connect_timeout=connect_timeout, socket_timeout=socket_timeout
        )
        return RedisHuey(QUEUE_NAME, connection_pool=pool, results=False)
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

    def __init__(
        self,
        queue_url: str,
        *,
        connect_timeout: float | None = None,
        socket_timeout: float | None = None,
    ) -> None:
        self.huey = make_huey(
            queue_url, connect_timeout=connect_timeout, socket_timeout=socket_timeout
        )
        self.handler: Handler = _no_handler
        self._task = self.huey.task(name=TASK_NAME)(self._deliver)
        # Evaluations asked for after the training (experiments trained before they existed).
        self.evaluation_handler: Handler = _no_handler
        self._evaluation_task = self.huey.task(name=EVALUATION_TASK_NAME)(self._deliver_evaluation)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobQueue:
        return cls(
            settings.queue_url,
            connect_timeout=settings.redis_connect_timeout,
            socket_timeout=settings.redis_socket_timeout,
        )

    def _deliver(self, experiment_id: str) -> None:
        self.handler(experiment_id)

    def _deliver_evaluation(self, experiment_id: str) -> None:
        self.evaluation_handler(experiment_id)

    def enqueue_evaluation(self, experiment_id: str) -> None:
        self._evaluation_task(experiment_id)
        log.info("queued the evaluation of experiment %s", experiment_id)

    def enqueue(self, experiment_id: str) -> None:
        self._task(experiment_id)
        log.debug("queued experiment %s", experiment_id)  # usecases.submission says it for people

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def pending_ids(self) -> set[str]:
        """The experiment ids the queue holds right now (Huey's SQLite and Redis storages both
        list their messages): what the sweep compares queued rows with."""
        return {str(task.args[0]) for task in self.huey.pending() if task.args}

    def flush(self) -> None:
        """Drop every pending delivery (tests; the sweep re-delivers what still matters)."""
        self.huey.flush()
