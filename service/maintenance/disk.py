"""How much disk the service uses and has left, and the guard that refuses new trainings when
the disk is nearly full (rather than letting them fail mid-epoch).

The report walks the model store, so it is cached for REPORT_TTL_SECONDS: `/health`, `/metrics`
and the page ask often, a term's store holds thousands of files, and sizes change slowly.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from service.config import Settings
from service.db.session import Database
from service.db.upkeep import database_bytes, sqlite_path
from service.errors import InsufficientStorage
from service.storage import ModelStore

REPORT_TTL_SECONDS = 30.0
# The guard reads free space only (one statfs a path): cheap enough for every submission.


@dataclass(frozen=True)
class DiskReport:
    store_bytes: int
    database_bytes: int
    free_bytes: int | None
    """The least free space among the local places the service writes; None when all of them
    are remote (an object store and PostgreSQL)."""
    min_free_bytes: int

    @property
    def low(self) -> bool:
        return self.free_bytes is not None and self.free_bytes < self.min_free_bytes


def _local_places(settings: Settings) -> list[Path]:
    """The folders whose filesystem fills as the service works."""
    places = [Path(settings.work_dir)]
    store_url = settings.model_store_url
    if "://" not in store_url or store_url.startswith(("file://", "local://")):
        places.append(Path(store_url.split("://", 1)[-1]))
    database = sqlite_path(settings.database_url)
    if database is not None:
        places.append(database.parent)
    return places


def free_bytes(settings: Settings) -> int | None:
    """The least free space among the filesystems the service writes to."""
    free: list[int] = []
    for place in _local_places(settings):
        existing = place
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent  # a folder not made yet fills its parent's disk
        free.append(shutil.disk_usage(existing).free)
    return min(free) if free else None


def ensure_room(settings: Settings) -> None:
    """Refuse (507) a new training while free disk is under MIN_FREE_DISK_BYTES."""
    if settings.min_free_disk_bytes <= 0:
        return
    free = free_bytes(settings)
    if free is not None and free < settings.min_free_disk_bytes:
        raise InsufficientStorage(
            f"the server's disk is nearly full ({_mib(free)} free, MIN_FREE_DISK_BYTES is "
            f"{_mib(settings.min_free_disk_bytes)}): new trainings wait until an operator frees "
            "space (`python -m service gc` shows what retention can reclaim)"
        )


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


class DiskReporter:
    """Measures the store, the database and free space, at most once per REPORT_TTL_SECONDS."""

    def __init__(
        self,
        settings: Settings,
        store: ModelStore,
        db: Database,
        *,
        ttl: float = REPORT_TTL_SECONDS,
    ) -> None:
        self._settings, self._store, self._db, self._ttl = settings, store, db, ttl
        self._lock = threading.Lock()
        self._report: DiskReport | None = None
        self._measured_at = float("-inf")

    def report(self) -> DiskReport:
        with self._lock:  # one walk at a time; callers within the TTL share it
            if self._report is None or time.monotonic() - self._measured_at > self._ttl:
                self._report = self._measure()
                self._measured_at = time.monotonic()
            return self._report

    def _measure(self) -> DiskReport:
        return DiskReport(
            store_bytes=self._store.total_bytes(),
            database_bytes=database_bytes(self._db),
            free_bytes=free_bytes(self._settings),
            min_free_bytes=self._settings.min_free_disk_bytes,
        )
