"""No route dependency runs in a worker thread: each sync one costs a thread hop each way."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from service.api.app import create_app
from service.config import Settings


def _routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route, those of included routers too (FastAPI keeps those as routers)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def test_every_dependency_of_every_route_runs_on_the_event_loop(settings: Settings) -> None:
    routes = list(_routes(create_app(settings).routes))
    assert len(routes) > 40
    sync = {
        f"{route.path}: {dependency.call.__name__}"
        for route in routes
        for dependency in _dependencies(route.dependant)
        if dependency.call is not None
        and not inspect.iscoroutinefunction(dependency.call)
        and not inspect.isasyncgenfunction(dependency.call)
    }
    assert not sync, f"sync dependencies (open the session in the route instead): {sorted(sync)}"
