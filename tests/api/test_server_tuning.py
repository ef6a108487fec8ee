"""How an API process shares its CPU between the event loop and the database routes' threads."""

from __future__ import annotations

from collections.abc import Callable

from anyio import to_thread
from fastapi.testclient import TestClient


def _route_threads(client: TestClient) -> float:
    assert client.portal is not None  # the client is started: its event loop runs the app
    return client.portal.call(lambda: to_thread.current_default_thread_limiter().total_tokens)


def test_api_threads_bounds_the_threads_of_the_database_routes(
    app_with: Callable[..., TestClient],
) -> None:
    client = app_with(api_threads=3)

    assert _route_threads(client) == 3
    assert client.get("/experiments").status_code == 200  # the routes still run, on those three
