"""Health: whether the API's dependencies answer (the database, the queue, the training data).

The checks run at once, each in its own thread, and the answer waits at most
HEALTH_DEADLINE_SECONDS: a dependency that has not answered by then is reported as `timeout`
(a host that silently drops traffic would otherwise hang the probe until its own timeout).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TypeVar

from service.config import Settings
from service.db.session import Database
from service.jobs.queue import JobQueue
from service.ml.data import probe

OK = "ok"
TIMEOUT = "timeout"
# Load balancers give a probe a second or two; the answer comes within this, hung or not.
HEALTH_DEADLINE_SECONDS = 0.8

T = TypeVar("T")


@dataclass(frozen=True)
class Health:
    """Each dependency's state: `ok`, `timeout` (no answer within the deadline), or
    `unavailable: <why>`."""

    database: str
    queue: str
    data: str
    pending_jobs: int
    """Deliveries waiting in the queue; -1 when the queue did not answer."""

    @property
    def healthy(self) -> bool:
        return all(check == OK for check in (self.database, self.queue, self.data))


def _unavailable(why: object) -> str:
    return f"unavailable: {why}"


def _outcome(future: Future[T], deadline: float) -> tuple[str, T | None]:
    """`ok` and the value, `timeout`, or `unavailable: <error>`."""
    try:
        return OK, future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        return TIMEOUT, None
    except Exception as error:  # any failure is the answer, not a reason to fail the request
        return _unavailable(type(error).__name__), None


def check_health(*, db: Database, queue: JobQueue, settings: Settings) -> Health:
    deadline = time.monotonic() + HEALTH_DEADLINE_SECONDS
    # Not a `with` block: leaving it would wait for a hung check. A hung thread ends when its
    # client's own timeout (DATABASE_CONNECT_TIMEOUT, REDIS_SOCKET_TIMEOUT) fires.
    pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="health")
    checks: tuple[Callable[[], object], ...] = (
        db.ping,
        queue.pending,
        lambda: probe(settings.mnist_path),
    )
    database_future, queue_future, data_future = (pool.submit(check) for check in checks)
    pool.shutdown(wait=False)
    database, _ = _outcome(database_future, deadline)
    queue_state, pending = _outcome(queue_future, deadline)
    data_state, data_problem = _outcome(data_future, deadline)
    if data_state == OK and data_problem:
        data_state = _unavailable(data_problem)
    return Health(
        database=database,
        queue=queue_state,
        data=data_state,
        pending_jobs=pending if isinstance(pending, int) else -1,
    )
