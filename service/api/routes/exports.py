"""Reproduce and take home: rerun an experiment, download it as plain Keras or as its model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import StreamingResponse

from service.api.deps import (
    ClientIdDep,
    DatabaseDep,
    ExperimentId,
    QueueDep,
    Reader,
    RuntimeDep,
    SettingsDep,
    TokenFirstRoute,
    Writer,
)
from service.schemas.errors import error_responses
from service.schemas.experiments import ExperimentPublic
from service.usecases import exports, reproduction

router = APIRouter(route_class=TokenFirstRoute, prefix="/experiments", tags=["reproduction"])


def _file(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI for a download: the file's media type, then the errors a read can meet."""
    ok: dict[int | str, dict[str, Any]] = {
        200: {"content": {media_type: {}}, "description": description}
    }
    return ok | error_responses(401, 404, 422)


def _attachment(download: exports.Download) -> StreamingResponse:
    return StreamingResponse(
        download.chunks,
        media_type=download.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{download.filename}"',
            "Content-Length": str(download.size),
        },
    )


@router.post(
    "/{experiment_id}/rerun",
    response_model=ExperimentPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Writer],
    responses=error_responses(401, 404, 422, 429),
)
def rerun_experiment(
    experiment_id: ExperimentId,
    settings: SettingsDep,
    db: DatabaseDep,
    queue: QueueDep,
    client: ClientIdDep,
) -> ExperimentPublic:
    """Queue the same spec again as a new experiment with `rerun_of`; once both have finished,
    `GET /experiments/{id}` of the rerun says whether it reproduced the history."""
    rerun = reproduction.rerun_experiment(
        experiment_id=experiment_id, settings=settings, db=db, queue=queue, client_id=client
    )
    return ExperimentPublic.of(rerun)


@router.get(
    "/{experiment_id}/notebook.py",
    response_class=StreamingResponse,
    dependencies=[Reader],
    responses=_file("text/x-python", "a runnable plain-Keras script of this experiment"),
)
def notebook_script(experiment_id: ExperimentId, db: DatabaseDep) -> StreamingResponse:
    """Load MNIST, split it, `Sequential([...])`, `compile`, `fit`, `evaluate`: this experiment
    as the Keras a learner writes, giving the same history with the same versions."""
    with db.scope() as session:
        return _attachment(exports.notebook_script(session, experiment_id))


@router.get(
    "/{experiment_id}/notebook.ipynb",
    response_class=StreamingResponse,
    dependencies=[Reader],
    responses=_file(exports.JUPYTER_NOTEBOOK, "the same program as a Jupyter notebook"),
)
def notebook_file(experiment_id: ExperimentId, db: DatabaseDep) -> StreamingResponse:
    """The script's steps as an nbformat 4 notebook, each with a line of explanation."""
    with db.scope() as session:
        return _attachment(exports.notebook_file(session, experiment_id))


@router.get(
    "/{experiment_id}/model",
    response_class=StreamingResponse,
    dependencies=[Reader],
    responses=_file(exports.KERAS_MODEL, "the trained model as a .keras file")
    | error_responses(409),
)
def download_model(experiment_id: ExperimentId, runtime: RuntimeDep) -> StreamingResponse:
    """The trained `.keras` file (`keras.models.load_model` reads it); 409 until it exists."""
    return _attachment(
        exports.trained_model(db=runtime.db, store=runtime.store, experiment_id=experiment_id)
    )
