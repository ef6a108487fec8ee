"""The API process's collaborators, built once from Settings and closed once."""

from __future__ import annotations

from dataclasses import dataclass

from service.config import Settings
from service.db.session import Database
from service.jobs.queue import JobQueue
from service.ml.inference import ModelCache
from service.predictions import Predictions
from service.storage import ModelStore, store_from_settings


@dataclass
class Runtime:
    settings: Settings
    db: Database
    queue: JobQueue
    store: ModelStore
    predictions: Predictions

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        db = Database(settings.database_url)
        store = store_from_settings(settings)
        return cls(
            settings=settings,
            db=db,
            queue=JobQueue(settings.queue_url),
            store=store,
            predictions=Predictions(
                settings=settings,
                db=db,
                store=store,
                cache=ModelCache(settings.model_cache_size),
            ),
        )

    def close(self) -> None:
        self.predictions.cache.clear()
        self.db.dispose()
