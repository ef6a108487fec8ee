"""The API process's collaborators, built once from Settings and closed once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.config import Settings
from service.db import stats
from service.db.session import Database
from service.domain import utcnow
from service.jobs.queue import JobQueue
from service.maintenance.disk import DiskReporter
from service.metrics import EPOCH_BUCKETS, OperationsCollector
from service.ml.inference import ModelCache
from service.serving.batching import MicroBatcher
from service.serving.decoding import ImageDecoder
from service.serving.loader import ModelLoader
from service.serving.preloader import ModelPreloader
from service.serving.resolver import ModelResolver
from service.storage import ModelStore, store_from_settings
from service.usecases.listing import EstimateCache
from service.usecases.prediction import Predictions


@dataclass
class Runtime:
    settings: Settings
    db: Database
    queue: JobQueue
    store: ModelStore
    predictions: Predictions
    operations: OperationsCollector
    disk: DiskReporter
    estimates: EstimateCache
    class_exists: bool = False
    """Somebody was added to the class (seen once, true for good: people are never removed),
    so a request without a token is no longer everyone's."""
    open_until: float = float("-inf")
    """Until when (time.monotonic) the service counts as open without asking the database."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        db = Database.from_settings(settings)
        store = store_from_settings(settings)
        queue = JobQueue.from_settings(settings)
        disk = DiskReporter(settings, store, db)

        def read_operations() -> stats.Operations:
            with db.scope() as session:
                return stats.operations(
                    session,
                    now=utcnow(),
                    lease_seconds=settings.lease_seconds,
                    epoch_bounds=EPOCH_BUCKETS,
                )

        resolver = ModelResolver(db)
        loader = ModelLoader(
            store=store,
            cache=ModelCache(settings.model_cache_size),
            download_dir=Path(settings.work_dir) / "serving",
        )
        preloader = ModelPreloader(loader=loader, resolver=resolver)
        return cls(
            settings=settings,
            db=db,
            queue=queue,
            store=store,
            predictions=Predictions(
                resolver=resolver,
                loader=loader,
                decoder=ImageDecoder.from_settings(settings),
                batcher=MicroBatcher() if settings.predict_batching else None,
                preloader=preloader if settings.preload_models else None,
            ),
            operations=OperationsCollector(read_operations, queue.pending, disk.report),
            disk=disk,
            estimates=EstimateCache(settings),
        )

    def close(self) -> None:
        self.predictions.close()
        self.db.dispose()
