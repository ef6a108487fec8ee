"""Liveness and dependency health."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service import __version__
from service.api.deps import RuntimeDep
from service.maintenance.disk import DiskReport
from service.schemas.experiments import DiskPublic, HealthPublic
from service.usecases.health import check_health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def health(runtime: RuntimeDep) -> JSONResponse:
    """Whether the database, the queue and the training data answer (503 when one does not),
    and the disk the service uses and has left."""
    report = check_health(db=runtime.db, queue=runtime.queue, settings=runtime.settings)
    body = HealthPublic(
        status="ok" if report.healthy else "degraded",
        database=report.database,
        queue=report.queue,
        data=report.data,
        version=__version__,
        checks={"pending_jobs": report.pending_jobs},
        disk=disk_public(runtime.disk.report()),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if report.healthy else 503)


def disk_public(report: DiskReport) -> DiskPublic:
    return DiskPublic(
        store_bytes=report.store_bytes,
        database_bytes=report.database_bytes,
        free_bytes=report.free_bytes,
        min_free_bytes=report.min_free_bytes,
        low=report.low,
    )
