"""How an API process shares its CPU between the event loop and the database routes' threads."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from anyio import to_thread
from fastapi.testclient import TestClient

from service.config import Settings


def _route_threads(client: TestClient) -> float:
    assert client.portal is not None  # the client is started: its event loop runs the app
    return client.portal.call(lambda: to_thread.current_default_thread_limiter().total_tokens)


def test_api_threads_bounds_the_threads_of_the_database_routes(
    app_with: Callable[..., TestClient],
) -> None:
    client = app_with(api_threads=3)

    assert _route_threads(client) == 3
    assert client.get("/experiments").status_code == 200  # the routes still run, on those three


def test_a_serving_process_hands_the_gil_on_after_api_switch_interval_ms() -> None:
    """Set where the API is served (not in a test process, where it would stay set)."""
    script = (
        "import sys\n"
        "from service.api.app import tune_server_process\n"
        "from service.config import Settings\n"
        "tune_server_process(Settings(api_switch_interval_ms=2.5))\n"
        "print(sys.getswitchinterval())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )

    assert float(done.stdout.split()[-1]) == 0.0025
    assert Settings().api_switch_interval_ms == 1.0  # the default: a fifth of Python's
