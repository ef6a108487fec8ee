"""Health: whether the API's dependencies answer (the database, the queue, the training data)."""

from __future__ import annotations

from dataclasses import dataclass

from service.config import Settings
from service.db.session import Database
from service.jobs.queue import JobQueue
from service.ml.data import probe

OK = "ok"


@dataclass(frozen=True)
class Health:
    """Each dependency's state: `ok`, or `unavailable: <why>`."""

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


def check_health(*, db: Database, queue: JobQueue, settings: Settings) -> Health:
    try:
        db.ping()
        database = OK
    except Exception as error:  # any failure is the answer, not a reason to fail the request
        database = _unavailable(type(error).__name__)
    try:
        pending = queue.pending()
        queue_state = OK
    except Exception as error:
        pending = -1
        queue_state = _unavailable(type(error).__name__)
    data_problem = probe(settings.mnist_path)
    return Health(
        database=database,
        queue=queue_state,
        data=_unavailable(data_problem) if data_problem else OK,
        pending_jobs=pending,
    )
