"""Liveness and dependency health."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service import __version__
from service.api.deps import RuntimeDep
from service.ml.data import probe
from service.schemas.experiments import HealthPublic

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def health(runtime: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with runtime.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"unavailable: {type(error).__name__}"
    try:
        pending = runtime.queue.pending()
        checks["queue"] = "ok"
    except Exception as error:
        pending = -1
        checks["queue"] = f"unavailable: {type(error).__name__}"
    data_problem = probe(runtime.settings.mnist_path)
    checks["data"] = f"unavailable: {data_problem}" if data_problem else "ok"
    healthy = all(value == "ok" for value in checks.values())
    body = HealthPublic(
        status="ok" if healthy else "degraded",
        database=checks["database"],
        queue=checks["queue"],
        data=checks["data"],
        version=__version__,
        checks={"pending_jobs": pending},
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if healthy else 503)
