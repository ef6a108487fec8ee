"""Shared fixtures: real settings on temp files, the app over httpx, real worker processes.

Embedded defaults by default. When DATABASE_URL / QUEUE_URL point at PostgreSQL / Redis (the
scaled CI run), the same tests run against those, with the database and queue wiped per test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.api.app import create_app
from service.config import Settings
from service.db.session import Database
from service.jobs.queue import JobQueue

REPO = Path(__file__).resolve().parents[1]
MNIST_PATH = os.environ.get("MNIST_PATH") or str(REPO.parent / "shared" / "data" / "mnist.npz")
SCALED_DATABASE = os.environ.get("DATABASE_URL", "")
SCALED_QUEUE = os.environ.get("QUEUE_URL", "")

# Short enough that recovery tests finish quickly, long enough for a loaded 2-core machine.
TEST_LEASE_SECONDS = 6.0
TEST_HEARTBEAT_SECONDS = 1.0


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a subprocess needs to see exactly these settings."""
    env = {key: value for key, value in os.environ.items() if key not in _setting_names()}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[name.upper()] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    env["PYTHONUNBUFFERED"] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def _setting_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def _reset_postgres(url: str) -> None:
    db = Database(url)
    with db.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    db.dispose()


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
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


class ServiceProcess:
    """A real `python -m service ...` process, killed for sure at teardown."""

    def __init__(self, args: list[str], settings: Settings, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", *args],
            env=settings_env(settings),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the process alone, as a crash would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self._log.close()

    def children(self) -> list[int]:
        return _children(self.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in path.read_text().split()]
    except FileNotFoundError:
        return []


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.05, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)


def wait_finished(client: Any, experiment_id: str, *, timeout: float = 120) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        body = client.get(f"/experiments/{experiment_id}").json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    result: dict[str, Any] = wait_for(
        finished, timeout=timeout, interval=0.2, what=f"experiment {experiment_id} to finish"
    )
    return result
