"""Bounded waits on PostgreSQL and Redis: a host that accepts connections and then silently
drops traffic fails a call within its timeout, and /health answers within a second, saying
which dependency hung."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from service.db.session import Database
from service.jobs.queue import JobQueue
from tests.helpers import free_port, runtime_of
from tests.tcp_proxy import TcpProxy

# Long enough for the slowest bounded call (libpq counts 2 s at least) on a loaded machine.
BOUNDED = 20.0


@pytest.fixture
def black_hole() -> Iterator[TcpProxy]:
    """Accepts connections and never answers."""
    with TcpProxy("127.0.0.1", free_port()) as proxy:
        proxy.blackhole()
        yield proxy


def _postgres(port: int) -> Database:
    return Database(
        f"postgresql+psycopg://lab@127.0.0.1:{port}/lab", connect_timeout=2, statement_timeout=5
    )


def _redis(port: int) -> JobQueue:
    return JobQueue(f"redis://127.0.0.1:{port}/0", connect_timeout=2, socket_timeout=2)


def _raises_within(call: Callable[[], object], seconds: float) -> BaseException:
    """Run `call` in a thread; it must end, raising, within `seconds` (not hang)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{call} still waiting after {seconds} s"
    assert raised, f"{call} returned although nothing answers"
    return raised[0]


def test_a_postgres_connect_to_a_silent_host_fails_in_bounded_time(black_hole: TcpProxy) -> None:
    db = _postgres(black_hole.port)
    assert isinstance(_raises_within(db.ping, BOUNDED), OperationalError)
    db.dispose()


def test_a_redis_command_to_a_silent_host_fails_in_bounded_time(black_hole: TcpProxy) -> None:
    queue = _redis(black_hole.port)
    assert isinstance(_raises_within(queue.pending, BOUNDED), Exception)


def test_health_answers_within_a_second_when_dependencies_hang(
    client: TestClient, black_hole: TcpProxy
) -> None:
    runtime = runtime_of(client)
    healthy_db, healthy_queue = runtime.db, runtime.queue
    runtime.db, runtime.queue = _postgres(black_hole.port), _redis(black_hole.port)
    try:
        started = time.monotonic()
        response = client.get("/health")
        elapsed = time.monotonic() - started
    finally:
        runtime.db.dispose()
        runtime.db, runtime.queue = healthy_db, healthy_queue
    assert response.status_code == 503
    body = response.json()
    assert (body["database"], body["queue"], body["data"]) == ("timeout", "timeout", "ok")
    assert body["checks"]["pending_jobs"] == -1
    assert elapsed < 3.0, elapsed  # a hung check would hold it for its whole timeout
