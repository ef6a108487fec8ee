"""The API process's collaborators, built once from Settings and closed once."""

from __future__ import annotations

from dataclasses import dataclass

from service.config import Settings
from service.db.session import Database
from service.jobs.queue import JobQueue
from service.storage import ModelStore, store_from_settings


@dataclass
class Runtime:
    settings: Settings
    db: Database
    queue: JobQueue
    store: ModelStore

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            queue=JobQueue(settings.queue_url),
            store=store_from_settings(settings),
        )

    def close(self) -> None:
        self.db.dispose()
