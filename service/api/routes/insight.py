"""Insight: an experiment's test-set evaluation, its layer health by epoch, and their pictures."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse

from service.api.deps import (
    DatabaseDep,
    ExperimentId,
    QueueDep,
    Reader,
    TeacherDep,
    TokenFirstRoute,
)
from service.api.routes.charts import Kind, picture
from service.db import insight, repository
from service.db.session import Database
from service.insight.evaluation import MISTAKES_KEPT, Evaluation
from service.insight.layers import PROBE_IMAGES
from service.insight.pictures import (
    MISTAKE_COLUMNS,
    NARROW_COLUMNS,
    confusion_chart,
    gradients_chart,
    mistakes_png,
)
from service.jobs.queue import JobQueue
from service.schemas.errors import error_responses
from service.schemas.insight import EvaluationPendingPublic, EvaluationPublic, LayersPublic
from service.usecases.insight import EVALUATION_RETRY_SECONDS, evaluation_or_request

router = APIRouter(
    route_class=TokenFirstRoute,
    prefix="/experiments/{experiment_id}",
    tags=["insight"],
    dependencies=[Reader],
)
PENDING: dict[int | str, dict[str, Any]] = {
    202: {
        "model": EvaluationPendingPublic,
        "description": "being evaluated by a worker (an experiment trained before evaluations "
        "existed); ask again shortly",
    }
}
EVALUATION_ERRORS = error_responses(401, 403, 404, 409, 422)
# How soon a client should ask again: one evaluation takes a few seconds.
RETRY_AFTER_SECONDS = 2


def _pending(experiment_id: str) -> JSONResponse:
    body = EvaluationPendingPublic(
        experiment_id=experiment_id,
        detail="a worker is evaluating this experiment's model on the test set; ask again in a "
        f"few seconds (a request pending for {EVALUATION_RETRY_SECONDS:g} s is sent again)",
    )
    return JSONResponse(
        body.model_dump(),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _evaluation(
    db: Database, queue: JobQueue, experiment_id: str, teacher: bool
) -> Evaluation | JSONResponse:
    found = evaluation_or_request(
        db=db, queue=queue, experiment_id=experiment_id, reveal_sealed=teacher
    )
    return found if found is not None else _pending(experiment_id)


@router.get(
    "/evaluation",
    response_model=EvaluationPublic,
    responses={**PENDING, **EVALUATION_ERRORS},
)
def read_evaluation(
    experiment_id: ExperimentId, db: DatabaseDep, queue: QueueDep, teacher: TeacherDep
) -> EvaluationPublic | JSONResponse:
    """Confusion matrix, per-class scores, the most confidently wrong images, loss, accuracy."""
    found = _evaluation(db, queue, experiment_id, teacher)
    if isinstance(found, JSONResponse):
        return found
    return EvaluationPublic.of(experiment_id, found)


NARROW = Query(description="drawn for a phone's width (about 360 px) instead of a page's")


@router.get(
    "/confusion.{kind}",
    response_class=Response,
    responses={
        200: {
            "content": {"image/svg+xml": {}, "image/png": {}},
            "description": "a confusion heat map",
        },
        **PENDING,
        **EVALUATION_ERRORS,
    },
)
def confusion_picture(
    experiment_id: ExperimentId,
    kind: Kind,
    db: DatabaseDep,
    queue: QueueDep,
    teacher: TeacherDep,
    narrow: Annotated[bool, NARROW] = False,
) -> Response:
    """Rows the true digit, columns the prediction, with counts, recall and precision."""
    found = _evaluation(db, queue, experiment_id, teacher)
    if isinstance(found, JSONResponse):
        return found
    with db.scope() as session:
        name = repository.get_experiment(session, experiment_id).name
    return picture(confusion_chart(found, title=name, narrow=narrow), kind)


@router.get(
    "/mistakes.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "a grid of mistaken digits"},
        **PENDING,
        **EVALUATION_ERRORS,
    },
)
def mistakes_picture(
    experiment_id: ExperimentId,
    db: DatabaseDep,
    queue: QueueDep,
    teacher: TeacherDep,
    n: Annotated[
        int,
        Query(ge=1, le=1000, description=f"how many; at most the {MISTAKES_KEPT} stored"),
    ] = MISTAKES_KEPT,
    narrow: Annotated[bool, NARROW] = False,
) -> Response:
    """The most confidently wrong test images, captioned `true → predicted (probability)`.

    Only the first 25 mistakes are stored with the evaluation; a larger `n` draws those and
    says so in the `X-Mistakes-Shown` and `X-Mistakes-Note` headers.
    """
    found = _evaluation(db, queue, experiment_id, teacher)
    if isinstance(found, JSONResponse):
        return found
    shown = found.mistakes[:n]
    headers = {"X-Mistakes-Shown": str(len(shown))}
    if n > len(shown):
        headers["X-Mistakes-Note"] = (
            f"asked for {n}; the evaluation stores the {len(found.mistakes)} most confident "
            "mistakes"
        )
    columns = NARROW_COLUMNS if narrow else MISTAKE_COLUMNS
    return Response(mistakes_png(shown, columns=columns), media_type="image/png", headers=headers)


@router.get("/layers", response_model=LayersPublic, responses=error_responses(401, 404, 422))
def read_layers(experiment_id: ExperimentId, db: DatabaseDep) -> LayersPublic:
    """Layer health at the end of every recorded epoch, on the same probe images each time."""
    with db.scope() as session:
        current, _ = repository.history(session, experiment_id)
        epochs = insight.layer_history(session, experiment_id)
        return LayersPublic.of(experiment_id, current, PROBE_IMAGES, epochs)


@router.get(
    "/layers.{kind}",
    response_class=Response,
    responses={
        200: {
            "content": {"image/svg+xml": {}, "image/png": {}},
            "description": "kernel gradient norm of each Dense or Conv2D layer",
        },
        **error_responses(401, 404, 422),
    },
)
def layers_picture(
    experiment_id: ExperimentId,
    kind: Kind,
    db: DatabaseDep,
    narrow: Annotated[bool, NARROW] = False,
) -> Response:
    """Gradient norm of each Dense or Conv2D kernel, input to output, one line per epoch, on a
    log scale (BatchNormalization layers left out: their gamma is not a kernel)."""
    with db.scope() as session:
        experiment = repository.get_experiment(session, experiment_id)
        epochs = insight.layer_history(session, experiment_id)
    title = f"{experiment.name}: gradient by layer ({experiment.status.value})"
    return picture(gradients_chart(epochs, title=title, narrow=narrow), kind)
