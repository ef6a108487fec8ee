"""Studies: sweep a spec (grid, random, tpe; pruning), watch the leaderboard, cancel, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from service.api.deps import (
    ClientIdDep,
    DatabaseDep,
    Owner,
    OwnerQuery,
    QueueDep,
    Reader,
    ReaderDep,
    RuntimeDep,
    SettingsDep,
    TokenFirstRoute,
    Writer,
)
from service.api.routes.charts import PICTURE, Kind, WithTraining, overlay, picture
from service.charts import METRICS, Metric
from service.schemas.errors import error_responses
from service.schemas.studies import (
    StudiesPublic,
    StudyCreate,
    StudyDetailPublic,
    study_detail_public,
    study_public,
)
from service.studies.leaderboard import DEFAULT_THRESHOLD
from service.usecases import ownership, studies

router = APIRouter(route_class=TokenFirstRoute, prefix="/studies", tags=["studies"])
StudyId = Annotated[str, Path(min_length=1, max_length=64, description="the study's id")]
Threshold = Annotated[
    float,
    Query(ge=0, le=1, description="the validation accuracy `epochs_to_threshold` counts up to"),
]


@router.post(
    "",
    response_model=StudyDetailPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Writer],
    responses=error_responses(401, 413, 422, 429),
)
def create_study(
    body: StudyCreate,
    settings: SettingsDep,
    db: DatabaseDep,
    queue: QueueDep,
    client: ClientIdDep,
) -> StudyDetailPublic:
    """Validate every trial, then queue the first `max_parallel` of them."""
    study = studies.create_study(body=body, settings=settings, db=db, queue=queue, client_id=client)
    with db.scope() as session:
        report = studies.report(session, study.id)
    return study_detail_public(report, threshold=DEFAULT_THRESHOLD)


@router.get(
    "", response_model=StudiesPublic, dependencies=[Reader], responses=error_responses(401, 422)
)
def list_studies(
    db: DatabaseDep,
    caller: ReaderDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    owner: OwnerQuery = None,
) -> StudiesPublic:
    whose = ownership.list_filter(caller, owner, class_reads=settings.class_reads)
    with db.scope() as session:
        reports, count = studies.list_studies(session, limit=limit, offset=offset, owner=whose)
        return StudiesPublic(
            data=[study_public(report) for report in reports],
            count=count,
            limit=limit,
            offset=offset,
        )


@router.get(
    "/{study_id}",
    response_model=StudyDetailPublic,
    dependencies=[Reader],
    responses=error_responses(401, 404, 422),
)
def read_study(
    study_id: StudyId, db: DatabaseDep, threshold: Threshold = DEFAULT_THRESHOLD
) -> StudyDetailPublic:
    """Progress by status, and the leaderboard sorted by the objective."""
    with db.scope() as session:
        report = studies.report(session, study_id, threshold=threshold)
        return study_detail_public(report, threshold=threshold)


@router.get(
    "/{study_id}/curves.{kind}",
    response_class=Response,
    dependencies=[Reader],
    responses={**PICTURE, **error_responses(401, 404, 422)},
)
def study_curves(
    study_id: StudyId,
    db: DatabaseDep,
    kind: Kind,
    metric: Annotated[Metric, Query(description=", ".join(METRICS))] = "val_accuracy",
    training: WithTraining = False,
) -> Response:
    """Every trial's curve overlaid, labelled by what was varied; SVG or PNG."""
    with db.scope() as session:
        study, curves = studies.curves(session, study_id)
    chart = overlay(
        curves, metric=metric, training=training, title=f"{study.name} ({study.status.value})"
    )
    return picture(chart, kind)


@router.post(
    "/{study_id}/cancel",
    response_model=StudyDetailPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Writer, Owner],
    responses=error_responses(401, 403, 404, 409, 422),
)
def cancel_study(study_id: StudyId, db: DatabaseDep) -> StudyDetailPublic:
    """No new trials; queued ones never start, running ones stop within an epoch."""
    studies.cancel_study(db, study_id)
    with db.scope() as session:
        report = studies.report(session, study_id)
    return study_detail_public(report, threshold=DEFAULT_THRESHOLD)


@router.delete(
    "/{study_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Writer, Owner],
    responses=error_responses(401, 403, 404, 409, 422),
)
def delete_study(study_id: StudyId, runtime: RuntimeDep) -> Response:
    """Remove a finished or cancelled study with its trials, their histories and models."""
    studies.delete_study(
        study_id=study_id,
        db=runtime.db,
        predictions=runtime.predictions,
        model_store=runtime.store,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
