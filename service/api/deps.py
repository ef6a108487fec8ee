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
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from service.config import Settings
from service.db import people
from service.db.session import Database
from service.domain import Caller, Person, Role, person_client_id
from service.errors import Forbidden, Unauthorized
from service.jobs.queue import JobQueue
from service.runtime import Runtime
from service.usecases import ownership
from service.usecases.listing import EstimateCache
from service.usecases.people import token_digest


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


async def get_estimates(runtime: RuntimeDep) -> EstimateCache:
    return runtime.estimates


SettingsDep = Annotated[Settings, Depends(get_settings)]
EstimatesDep = Annotated[EstimateCache, Depends(get_estimates)]
DatabaseDep = Annotated[Database, Depends(get_database)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]


# While nobody is added and no API_TOKEN is set, each API process asks the database at most this
# often whether someone was added (by another process; its own POST /people closes it at once).
OPEN_CHECK_SECONDS = 1.0
MISSING_TOKEN = "this endpoint needs an API token: send the header 'Authorization: Bearer <token>'"
WRONG_TOKEN = (
    "the API token is wrong: send 'Authorization: Bearer <API_TOKEN>' or your own token "
    "(a teacher can issue a new one with POST /people/{id}/token)"
)
AuthorizationHeader = Annotated[
    str | None, Header(description="Bearer <API_TOKEN>, or a person's own token")
]


def _address(request: Request) -> str:
    return "address:" + (request.client.host if request.client else "unknown")


def _lookup(runtime: Runtime, digest: str | None) -> tuple[Person | None, bool]:
    """The person holding the token with this digest (if one was sent), and whether anybody
    was ever added; one session, in a worker thread."""
    with runtime.db.scope() as session:
        person = people.by_token_digest(session, digest) if digest else None
        return person, person is not None or people.anyone(session)


async def identify(
    request: Request, runtime: Runtime, authorization: str | None, *, required: bool
) -> Caller:
    """Who this request is: the one place that decides, for every route.

    The API_TOKEN holder is a teacher; a person's token makes them that person (their client
    id, what quotas and fair share key on, is theirs whatever their address). Without a token
    that opens anything, a service with no API_TOKEN and nobody added is open (anyone may do
    anything, as on a laptop); otherwise the caller is an anonymous reader, refused (401) when
    `required`. The database is asked (in one worker thread) only for a token that is not
    API_TOKEN, or while no API_TOKEN is set and nobody was seen added yet.
    """
    memo: dict[bool, Caller] = request.scope.setdefault("mnist_lab.callers", {})
    if required in memo:  # asked before the body was read (TokenFirstRoute), and again now
        return memo[required]
    caller = await _identify(request, runtime, authorization, required=required)
    memo[required] = caller
    return caller


async def _identify(
    request: Request, runtime: Runtime, authorization: str | None, *, required: bool
) -> Caller:
    settings = runtime.settings
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    bearer = scheme.lower() == "bearer" and bool(token)
    expected = settings.api_token
    if expected and bearer and hmac.compare_digest(token.encode(), expected.encode()):
        return Caller(client_id=admin_client_id(token), teacher=True, signed_in=True)
    person: Person | None = None
    known = bool(expected) or runtime.class_exists
    if not bearer and not known and time.monotonic() < runtime.open_until:
        # Open as seen a moment ago: a laptop's reads and predictions make no query for it.
        return Caller(client_id=_address(request), teacher=True)
    if bearer or not known:
        digest = token_digest(token) if bearer else None
        person, exists = await run_in_threadpool(_lookup, runtime, digest)
        if exists:
            runtime.class_exists = True  # people are revoked, never removed: it stays closed
        else:
            runtime.open_until = time.monotonic() + OPEN_CHECK_SECONDS
        known = known or exists
    if person is not None:
        return Caller(
            client_id=person_client_id(person.id),
            person=person,
            teacher=person.role is Role.TEACHER,
            signed_in=True,
        )
    if not known:
        return Caller(client_id=_address(request), teacher=True)
    if required:
        raise Unauthorized(WRONG_TOKEN if authorization else MISSING_TOKEN)
    return Caller(client_id=_address(request))


def admin_client_id(token: str) -> str:
    """The API_TOKEN holder's client id: a digest, never the token itself."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]


async def writer(
    request: Request, runtime: RuntimeDep, authorization: AuthorizationHeader = None
) -> Caller:
    """Creating, changing and deleting need a token that opens something, unless the service
    is open (no API_TOKEN, nobody added)."""
    return await identify(request, runtime, authorization, required=True)


async def reader(
    request: Request, runtime: RuntimeDep, authorization: AuthorizationHeader = None
) -> Caller:
    """Who reads: refused without a token under PROTECT_READS or CLASS_READS=own."""
    settings = runtime.settings
    required = settings.protect_reads or settings.class_reads == "own"
    return await identify(request, runtime, authorization, required=required)


async def require_reader(
    request: Request, runtime: RuntimeDep, authorization: AuthorizationHeader = None
) -> None:
    """Reads and predictions stay open unless PROTECT_READS or CLASS_READS=own is set; with
    CLASS_READS=own a student reads only their own experiments and studies (403)."""
    settings = runtime.settings
    if not (settings.protect_reads or settings.class_reads == "own"):
        return
    caller = await reader(request, runtime, authorization)
    if settings.class_reads == "own" and not caller.teacher:
        await run_in_threadpool(ownership.check_reads, runtime.db, caller, request.path_params)


WriterDep = Annotated[Caller, Depends(writer)]
ReaderDep = Annotated[Caller, Depends(reader)]


async def require_owner(request: Request, runtime: RuntimeDep, caller: WriterDep) -> None:
    """A change to the experiment, study or alias the path names is its owner's or a
    teacher's (403 naming the owner)."""
    if not caller.teacher:
        await run_in_threadpool(ownership.check_changes, runtime.db, caller, request.path_params)


async def require_teacher(request: Request, caller: WriterDep) -> None:
    """A teacher's action (setting up or closing a challenge): 403 for a student."""
    if not caller.teacher:
        raise Forbidden(f"only a teacher may {request.method} {request.url.path}; ask yours")


async def is_teacher(caller: ReaderDep) -> bool:
    """Whether the caller may see what only a teacher sees (a challenge's private scores
    before the close): the API_TOKEN holder or a person with the teacher role, signed in.
    While the service is open (nobody added, no API_TOKEN) nobody is."""
    return caller.teacher and caller.signed_in


TeacherDep = Annotated[bool, Depends(is_teacher)]

# What a route lists in `dependencies=` to say who may call it; a route that needs to know
# who it is takes `caller: WriterDep` (the same dependency, solved once per request).
Reader = Depends(require_reader)
Writer = Depends(writer)
Owner = Depends(require_owner)
Teacher = Depends(require_teacher)
ACCESS_RULES = (require_reader, writer)


class TokenFirstRoute(APIRoute):
    """A route that checks its access rule (`Reader`, `Writer`) before anything else.

    FastAPI parses a body before it runs any dependency, so a caller without the token who
    sent a body that does not parse was answered 422 (which names the body's faults) instead
    of 401. Here the rule runs before the body is read; as a dependency it runs again (from
    the request's memo, see `identify`), where it also documents the header in the schema.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        rules = [d.dependency for d in self.dependencies if d.dependency in ACCESS_RULES]
        if not rules:
            return handler

        async def checked_first(request: Request) -> Response:
            runtime: Runtime = request.app.state.runtime
            for rule in rules:
                await rule(request, runtime, request.headers.get("authorization"))
            return await handler(request)

        return checked_first


async def client_id(caller: WriterDep) -> str:
    """Who a submission counts against: the person, the API token's holder, else the client's
    address. Never a header the client picks: rotating it would escape the per-client queue
    cap. Only a digest of the API token is kept."""
    return caller.client_id


async def reader_client_id(caller: ReaderDep) -> str:
    """Who a read (a prediction) counts against, for the decoding budget: the same keys as
    `client_id`; a wrong token names nobody (its address), so rotating made-up tokens does
    not escape the budget."""
    return caller.client_id


ClientIdDep = Annotated[str, Depends(client_id)]
ReaderClientIdDep = Annotated[str, Depends(reader_client_id)]
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
OwnerQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        description="me: your own work; a name: that person's (GET /people lists them)",
    ),
]
ExperimentId = Annotated[str, Path(min_length=1, max_length=64, description="the experiment's id")]
