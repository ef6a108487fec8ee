"""Shared fixtures: real settings on temp files, the app over httpx, real worker processes.

Helpers that are not fixtures live in `tests/helpers.py`.

Embedded defaults by default. When DATABASE_URL / QUEUE_URL point at PostgreSQL / Redis (the
scaled CI run), the same tests run against those, with the database and queue wiped per test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.api.app import create_app
from service.config import Settings
from service.db.migrations import upgrade_to_head
from service.db.session import Database
from service.jobs.queue import JobQueue
from tests.helpers import MNIST_PATH, RedisServer, ServiceProcess
from tests.tcp_proxy import TcpProxy

SCALED_DATABASE = os.environ.get("DATABASE_URL", "")
SCALED_QUEUE = os.environ.get("QUEUE_URL", "")

# Short enough that recovery tests finish quickly, long enough for a loaded 2-core machine.
TEST_LEASE_SECONDS = 6.0
TEST_HEARTBEAT_SECONDS = 1.0


def _reset_postgres(url: str) -> None:
    db = Database(url)
    with db.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    db.dispose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts real service processes is a `process` test: the everyday loop,
    `-m "not slow and not process"`, leaves them out; the full run and CI keep them."""
    for item in items:
        if "start_service" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.process)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / 'service.db'}",
            "queue_url": f"sqlite:///{tmp_path / 'queue.db'}",
            "models_dir": str(tmp_path / "models"),
            "models_url": None,
            "work_dir": str(tmp_path / "work"),
            "mnist_path": MNIST_PATH,
            "lease_seconds": TEST_LEASE_SECONDS,
            "heartbeat_seconds": TEST_HEARTBEAT_SECONDS,
            "sweep_seconds": 1.0,
            "cancel_grace_seconds": 5.0,
            "api_token": None,
            "worker_label": None,
            # The name httpx's ASGI test client gives every request; HOST stays loopback.
            "allowed_hosts": "testserver",
            # Background loads would race the tests that count loads or look into the cache;
            # the tests of preloading turn it on (tests/api/test_predict_preloading.py).
            "preload_models": False,
        }
        if SCALED_DATABASE.startswith("postgresql"):
            values["database_url"] = SCALED_DATABASE
        if SCALED_QUEUE.startswith("redis"):
            values["queue_url"] = SCALED_QUEUE
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    settings = make_settings()
    if settings.database_url.startswith("postgresql"):
        _reset_postgres(settings.database_url)
    if settings.queue_url.startswith("redis"):
        JobQueue(settings.queue_url).flush()
    return settings


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    """The settings' database, brought to the Alembic head."""
    database = Database(settings.database_url)
    upgrade_to_head(settings.database_url, database.engine)
    yield database
    database.dispose()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(settings: Settings, *args: str) -> ServiceProcess:
        name = "-".join(args) or "all"
        process = ServiceProcess(list(args), settings, tmp_path / f"{name}-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def worker(settings: Settings, start_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    return start_service(settings, "worker")


@pytest.fixture
def redis_address(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real Redis: QUEUE_URL's in the scaled run, else a throwaway redis-server."""
    if SCALED_QUEUE.startswith("redis"):
        url = urlsplit(SCALED_QUEUE)
        yield url.hostname or "127.0.0.1", url.port or 6379
        return
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server (or QUEUE_URL=redis://...)")
    server = RedisServer(tmp_path)
    yield "127.0.0.1", server.port
    server.stop()


@pytest.fixture
def redis_proxy(redis_address: tuple[str, int]) -> Iterator[TcpProxy]:
    """That Redis behind a TCP proxy the test can cut and restore."""
    with TcpProxy(*redis_address) as proxy:
        yield proxy


@pytest.fixture
def app_with(
    settings: Settings, make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., TestClient]]:
    """Start the app with overrides; `settings` comes first so PostgreSQL is wiped for it."""
    clients: list[TestClient] = []

    def start(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)
