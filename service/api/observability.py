"""Request ids and request metrics, as one pure ASGI middleware so each request pays for a
single wrapper around `send`.

`X-Request-ID` is taken from the request (when it is short and printable) or made here, returned
on the response and set in `service.logs.REQUEST_ID` for every log record while it is answered.
Each request is counted by method, route template and status, and timed by method and route.
Label children are made once per combination and kept: the hot path does two dict lookups.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.logs import REQUEST_ID

HEADER = b"x-request-id"
MAX_ID_LENGTH = 128
_PRINTABLE = re.compile(rb"[\x21-\x7e]{1,%d}" % MAX_ID_LENGTH)
UNMATCHED = "<unmatched>"  # not one label per path a scanner tries


class Observability:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _given_id(scope["headers"]) or uuid.uuid4().hex.encode()
        token = REQUEST_ID.set(request_id.decode("latin-1"))
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            route = scope.get("route")
            self._observe(
                scope["method"],
                getattr(route, "path", UNMATCHED),
                status,
                time.perf_counter() - started,
            )

    def _observe(self, method: str, route: str, status: int, seconds: float) -> None:
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self._counters[(method, route, status)] = metrics.HTTP_REQUESTS.labels(
                method, route, str(status)
            )
        timer = self._timers.get((method, route))
        if timer is None:
            timer = self._timers[(method, route)] = metrics.HTTP_LATENCY.labels(method, route)
        counter.inc()
        timer.observe(seconds)


def _given_id(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == HEADER:
            return value if _PRINTABLE.fullmatch(value) else None
    return None
