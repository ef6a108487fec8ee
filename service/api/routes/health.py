"""Liveness and dependency health."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service import __version__
from service.api.deps import RuntimeDep
from service.schemas.experiments import HealthPublic
from service.usecases.health import check_health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def health(runtime: RuntimeDep) -> JSONResponse:
    report = check_health(db=runtime.db, queue=runtime.queue, settings=runtime.settings)
    body = HealthPublic(
        status="ok" if report.healthy else "degraded",
        database=report.database,
        queue=report.queue,
        data=report.data,
        version=__version__,
        checks={"pending_jobs": report.pending_jobs},
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if report.healthy else 503)
