"""`GET /metrics`: the Prometheus text exposition (see `service.metrics`)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from service import metrics
from service.api.deps import Reader, RuntimeDep, TokenFirstRoute
from service.schemas.errors import error_responses

router = APIRouter(route_class=TokenFirstRoute, tags=["metrics"], dependencies=[Reader])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **error_responses(401)},
)
def read_metrics(runtime: RuntimeDep) -> Response:
    """Every API process's counters and the database's figures (queries run in a thread)."""
    return Response(metrics.scrape(runtime.operations), media_type=CONTENT_TYPE_LATEST)
