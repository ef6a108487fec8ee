"""What every benchmark script needs: a free loopback port, and waiting for a condition."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

POLL_SECONDS = 0.1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """The predicate's first truthy value; exits the script if none comes within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_SECONDS)
