"""The app factory: routers, the one error mapping, the body-size guard, start-up checks."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send
from threadpoolctl import threadpool_limits

from service import __version__, logs
from service.api import messages
from service.api.bodies import OverLimit, read_body, replay
from service.api.browsers import BrowserDefences
from service.api.hot_path import HotPaths
from service.api.observability import Observability
from service.api.routes import (
    challenges,
    charts,
    comparisons,
    docs,
    events,
    experiments,
    exports,
    health,
    insight,
    metrics,
    models,
    notebooks,
    people,
    predict,
    studies,
    v2,
    web,
)
from service.config import Settings, get_settings
from service.db.migrations import upgrade_to_head
from service.errors import (
    DecodingBudgetSpent,
    ServiceError,
    TooLarge,
    Unauthorized,
    error_body,
)
from service.events.feed import ChangeFeed, end_streams_on_exit_signals
from service.jobs.recovery import sweep_once
from service.runtime import Runtime
from service.schemas.experiments import ExperimentCreate
from service.usecases.submission import limits_of_invalid_body

log = logging.getLogger(__name__)


def _error_response(
    status_code: int,
    code: str,
    detail: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, detail, details), status_code=status_code, headers=headers)


def _service_error_response(error: ServiceError) -> JSONResponse:
    # HTTP requires a 401 to name the scheme that would have been accepted.
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else {}
    if isinstance(error, DecodingBudgetSpent):
        headers["Retry-After"] = str(error.retry_after)
    return _error_response(error.status_code, error.code, error.message, error.details, headers)


def _unreadable_body(cause: BaseException | None) -> str | None:
    """Why the framework could not read a body, when the cause says it in a client's terms."""
    if isinstance(cause, UnicodeDecodeError):
        return str(cause)
    if isinstance(cause, RecursionError):
        # Python's JSON parser recurses once per level and stops near a thousand.
        return "the JSON nests lists or objects too deeply to read; flatten it"
    return None


HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _leaf_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """The app's routes in the order a request tries them, each included router opened.

    FastAPI nests an included router's routes (whose paths carry its prefix) behind one
    entry; nothing here includes a router under a further prefix."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _leaf_routes(included.routes)
        else:
            yield route


def _route_for(routes: Sequence[BaseRoute], scope: Scope, match: Match) -> BaseRoute | None:
    """The route Starlette resolves `scope` to: the first that matches at least `match`."""
    return next((route for route in routes if route.matches(scope)[0].value >= match.value), None)


def _allowed_methods(request: Request) -> list[str]:
    """Every method under which this URL resolves to the route that refused the request.

    Starlette's own 405 names only the first route that matched the path, though several may
    share it (GET and DELETE /studies/{id}). And a path that two templates match belongs to the
    first (/experiments/validate, not /experiments/{experiment_id}): GET there would reach
    another route, so it is not allowed here."""
    routes = list(_leaf_routes(request.app.router.routes))
    refused = _route_for(routes, request.scope, Match.PARTIAL)
    path = getattr(refused, "path", None)
    allowed = []
    for method in HTTP_METHODS:
        route = _route_for(routes, {**request.scope, "method": method}, Match.FULL)
        if route is not None and getattr(route, "path", None) == path:
            allowed.append(method)
    return allowed


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, error: ServiceError) -> JSONResponse:
        return _service_error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        model = _body_model(request)
        details = messages.field_errors(
            error.errors(),
            body=error.body,
            content_type=request.headers.get("content-type"),
            body_model=model,
        )
        if isinstance(model, type) and issubclass(model, ExperimentCreate):
            # Every problem in one answer: the limits a spec breaks besides its missing fields.
            settings = request.app.state.runtime.settings
            details += limits_of_invalid_body(error.body, settings)
        return _error_response(422, "invalid_request", messages.summary(details), details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:
            # Only the framework answers 400 here, to a body it cannot parse (not UTF-8, broken
            # multipart). To a client that is the same mistake as malformed JSON, which is a
            # 422 invalid_request: every route declares that answer, none declares a 400.
            reason = _unreadable_body(error.__cause__) or str(error.detail)
            details = [{"loc": ["body"], "msg": reason, "type": "body_invalid"}]
            return _error_response(422, "invalid_request", f"body: {reason}", details)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        headers = dict(getattr(error, "headers", None) or {})
        detail = str(error.detail)
        if error.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
            detail = f"{request.method} is not allowed here; use {headers['Allow']}"
        return _error_response(error.status_code, code, detail, headers=headers or None)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=error)
        return _error_response(500, "internal_error", "the service hit an unexpected error")


def _body_model(request: Request) -> Any:
    """The pydantic model the matched route reads its body into, if it reads one."""
    field = getattr(request.scope.get("route"), "body_field", None)
    return getattr(getattr(field, "field_info", None), "annotation", None)


class BodySizeLimit:
    """Refuse bodies over the limit (413) before the app reads them.

    A declared Content-Length is refused at once. Otherwise the body is read here, up to the
    limit, and handed on whole: an error raised from inside the app's own read would not do,
    as FastAPI turns anything raised while it reads a body into a 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        try:
            body = await read_body(receive, self.max_bytes)
        except OverLimit:
            await self._refuse(scope, receive, send)
            return
        if body is not None:
            await self.app(scope, replay(body, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Built only when needed: every other request would pay for a response it never sends.
        error = TooLarge(
            f"the request body is over the {self.max_bytes:,}-byte limit (MAX_BODY_BYTES); "
            "send fewer or smaller images"
        )
        await _service_error_response(error)(scope, receive, send)


# In the order their routes are matched (and the OpenAPI document lists them).
ROUTERS = (
    health.router,
    notebooks.router,
    experiments.router,
    exports.router,
    charts.router,
    insight.router,
    predict.router,
    models.router,
    studies.router,
    challenges.router,
    comparisons.router,
    people.router,
    v2.router,
    metrics.router,
    docs.router,
    events.router,
)


def _lifespan(
    settings: Settings, *, migrate: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up (runtime, migration, sweep, change feed) and its undoing at shut-down."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        runtime = Runtime.from_settings(settings)
        if migrate:
            upgrade_to_head(settings.database_url, runtime.db.engine)
        if not settings.api_token:
            log.warning(
                "API_TOKEN is not set: anyone who can reach this API may write to it until "
                "somebody is added with POST /people"
            )
        try:
            sweep_once(runtime.db, runtime.queue)
        except Exception:  # the workers sweep too; a failed start-up sweep is not fatal
            log.exception("start-up sweep failed")
        app.state.runtime = runtime
        feed = ChangeFeed(runtime.db, poll_seconds=settings.events_poll_seconds)
        app.state.change_feed = feed
        await feed.start()
        feed.listen(runtime.predictions.changed)
        runtime.predictions.start()
        restore_signals = end_streams_on_exit_signals(feed)
        try:
            yield
        finally:
            restore_signals()
            await feed.close()
            runtime.close()

    return lifespan


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="MNIST lab",
        version=__version__,
        description=(
            "Define Keras networks as JSON, have them trained on MNIST by workers, compare "
            "their learning curves and test scores, and recognise handwritten digits."
        ),
        lifespan=_lifespan(settings, migrate=migrate),
        # Served by the docs router instead, behind PROTECT_READS like every other read.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    web.mount(app)
    app.add_middleware(HotPaths)  # innermost: the guard and the metrics see its answers
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BrowserDefences, settings=settings)  # a foreign Host: before the body
    app.add_middleware(Observability)  # outermost: it times and labels every answer, 413s too
    return app


def app_from_environment() -> FastAPI:
    """The app of one of several API processes (`--workers`): each reads the same environment.

    The parent migrated the database before starting them; each is a fresh interpreter, so it
    sets up its own logging.
    """
    settings = get_settings()
    logs.configure(log_format=settings.log_format)
    app = create_app(settings, migrate=False)
    tune_server_process(settings)
    return app


def tune_server_process(settings: Settings) -> None:
    """What a serving process needs that a test process must not have, after start-up.

    The objects made so far (TensorFlow's, Keras's, the app's) live as long as the process, yet
    each full garbage collection walked all ~400,000 of them with the event loop stopped: about
    260 ms, which under load was the whole of /predict's p99. Freezing them exempts them; in a
    test process it would keep every test's garbage until the end.

    numpy's BLAS runs one thread: its threads made one image's 784x300 product 2.5x slower
    (they wake and spin for microseconds of work), and a busy API has a request per core anyway.

    The event loop answers /predict itself, and each time it waits on I/O or a forward pass
    another thread (a database route, a model loading) may take the GIL: the loop then waits
    up to a switch interval to get it back. Python's 5 ms made a class's /predict p99 about
    twice what 1 ms does (bench/class_load.py).
    """
    threadpool_limits(1, user_api="blas")
    sys.setswitchinterval(settings.api_switch_interval_ms / 1000)
    gc.collect()
    gc.freeze()
