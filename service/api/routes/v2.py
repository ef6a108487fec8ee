"""The Open Inference Protocol (v2, REST) that KServe and Triton clients speak.

`{name}` is what `model` is in /predict: an experiment id, `best`, `latest` or an alias; its
version is the experiment id it resolves to. Errors carry the protocol's `{"error": "..."}`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from service import __version__
from service.api.deps import DatabaseDep, Reader, ReaderDep, RuntimeDep, TokenFirstRoute
from service.db import registry
from service.domain import ServableModel
from service.errors import ModelNotFound, ServiceError, Unauthorized
from service.schemas.predict import ModelName
from service.schemas.v2 import (
    INFER_REQUEST_SCHEMA,
    V2_ERRORS,
    LivePublic,
    ModelMetadataPublic,
    ModelReadyPublic,
    ReadyPublic,
    RepositoryModelPublic,
    ServerMetadataPublic,
)
from service.serving import oip
from service.usecases import ownership
from service.usecases.prediction import few_enough_for_the_loop

SERVER_NAME = "mnist-lab"
EXTENSIONS = ["binary_tensor_data", "model_repository"]
INFER_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": INFER_REQUEST_SCHEMA}},
    }
}


class OipRoute(TokenFirstRoute):
    """Answers errors in the protocol's body; a malformed request is a 400, as clients expect."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as error:
                status = 400 if error.status_code == 422 else error.status_code
                unauthorized = isinstance(error, Unauthorized)
                headers = {"WWW-Authenticate": "Bearer"} if unauthorized else None
                return JSONResponse({"error": error.message}, status_code=status, headers=headers)
            except RequestValidationError as error:
                problems = "; ".join(
                    f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
                    for item in error.errors()
                )
                return JSONResponse({"error": problems}, status_code=400)

        return handle


router = APIRouter(prefix="/v2", tags=["v2"], route_class=OipRoute, responses=V2_ERRORS)
readers = [Reader]
Version = Annotated[str, Path(min_length=1, max_length=64, description="an experiment id")]


@router.get("", response_model=ServerMetadataPublic, dependencies=readers)
async def server_metadata() -> ServerMetadataPublic:
    return ServerMetadataPublic(name=SERVER_NAME, version=__version__, extensions=EXTENSIONS)


@router.get("/health/live", response_model=LivePublic)
async def live() -> LivePublic:
    """Open like /health: the process answers."""
    return LivePublic(live=True)


@router.get("/health/ready", response_model=ReadyPublic, responses={503: {"model": ReadyPublic}})
def ready(runtime: RuntimeDep) -> JSONResponse:
    """Ready when the database answers: every model reference is looked up there."""
    try:
        with runtime.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse({"ready": False}, status_code=503)
    return JSONResponse({"ready": True})


@router.post("/repository/index", response_model=list[RepositoryModelPublic], dependencies=readers)
def repository_index(db: DatabaseDep) -> list[RepositoryModelPublic]:
    """Every servable model by experiment id, then each alias (the model repository extension)."""
    with db.scope() as session:
        return RepositoryModelPublic.index(registry.list_servable(session))


@router.get("/models/{name}", response_model=ModelMetadataPublic, dependencies=readers)
@router.get(
    "/models/{name}/versions/{version}", response_model=ModelMetadataPublic, dependencies=readers
)
def model_metadata(
    name: ModelName, runtime: RuntimeDep, version: Version | None = None
) -> ModelMetadataPublic:
    model = _resolve(runtime.predictions.resolver.resolve, name, version)
    return ModelMetadataPublic.of(
        name, model, inputs=oip.INPUTS_METADATA, outputs=oip.OUTPUTS_METADATA
    )


@router.get("/models/{name}/ready", response_model=ModelReadyPublic, dependencies=readers)
@router.get(
    "/models/{name}/versions/{version}/ready",
    response_model=ModelReadyPublic,
    dependencies=readers,
)
def model_ready(
    name: ModelName, runtime: RuntimeDep, version: Version | None = None
) -> ModelReadyPublic:
    """200 when the name resolves to a trained model (loaded on its first infer)."""
    _resolve(runtime.predictions.resolver.resolve, name, version)
    return ModelReadyPublic(name=name, ready=True)


@router.post(
    "/models/{name}/infer",
    response_class=Response,
    dependencies=readers,
    openapi_extra=INFER_OPENAPI,
)
@router.post(
    "/models/{name}/versions/{version}/infer",
    response_class=Response,
    dependencies=readers,
    openapi_extra=INFER_OPENAPI,
)
async def infer(
    name: ModelName,
    request: Request,
    runtime: RuntimeDep,
    caller: ReaderDep,
    version: Version | None = None,
) -> Response:
    """FP32 or UINT8 images [n, 28, 28] or [n, 784] in; `probabilities` FP32 [n, 10] and
    `digit` INT64 [n] out, as JSON or binary tensors (`Inference-Header-Content-Length`)."""
    decoded = oip.decode_request(await request.body(), request.headers.get(oip.HEADER_LENGTH))
    predictions = runtime.predictions
    owner = ownership.prediction_owner(caller, class_reads=runtime.settings.class_reads)
    model = predictions.warm(name) if owner is None else None
    if model is None or not model.is_version(version):
        model = None  # a version asked for answers from that model, loaded if need be
    if model is not None and few_enough_for_the_loop(len(decoded.images)):
        probabilities = await predictions.forward_warm(model, decoded.images)
    else:
        result = await run_in_threadpool(
            lambda: predictions.predict_images(
                name, decoded.images, exactly=version is not None, owner_id=owner
            )
        )
        model, probabilities = result.model, result.probabilities
        _check_version(name, version, model)
    response = oip.encode_response(
        model_name=name,
        model_version=model.experiment_id,
        request=decoded,
        probabilities=probabilities,
    )
    return Response(response.body, media_type=response.media_type, headers=response.headers)


def _resolve(
    resolve: Callable[[str], ServableModel], name: str, version: str | None
) -> ServableModel:
    model = resolve(name)
    _check_version(name, version, model)
    return model


def _check_version(name: str, version: str | None, model: ServableModel) -> None:
    if not model.is_version(version):
        raise ModelNotFound(
            f"model {name!r} has no version {version!r}; it is at version {model.experiment_id}"
        )
