"""Digit recognition with any trained model: pixel lists, base64 images, or file uploads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from service.api.deps import Reader, ReaderClientIdDep, ReaderDep, RuntimeDep, TokenFirstRoute
from service.schemas.errors import error_responses
from service.schemas.predict import (
    BatchPredictResponse,
    ModelName,
    PredictRequest,
    PredictResponse,
)
from service.usecases import ownership
from service.usecases.prediction import Prediction

router = APIRouter(
    route_class=TokenFirstRoute, prefix="/predict", tags=["predict"], dependencies=[Reader]
)
ERRORS = error_responses(401, 404, 409, 413, 422, 429)


@router.post("", response_model=PredictResponse | BatchPredictResponse, responses=ERRORS)
async def predict(
    request: PredictRequest, runtime: RuntimeDep, caller: ReaderDep, client: ReaderClientIdDep
) -> Response:
    """One image (`image`, `image_base64`) answers one prediction; a batch answers in order."""
    predictions = runtime.predictions
    images = request.images_to_predict()
    owner = ownership.prediction_owner(caller, class_reads=runtime.settings.class_reads)
    model = predictions.warm_model(images) if owner is None else None
    if model is not None:
        answer = _shaped(request, await predictions.predict_warm(images, model, client=client))
    else:
        # Decoding images, querying the database or loading a model must not stall the loop.
        answer = await run_in_threadpool(
            lambda: _shaped(request, predictions.predict(images, client=client, owner_id=owner))
        )
    # Serialised once here: the answer was built from validated parts, so FastAPI's second
    # validation against the response model would only cost time on the hot path.
    return Response(answer.model_dump_json(), media_type="application/json")


def _shaped(request: PredictRequest, result: Prediction) -> PredictResponse | BatchPredictResponse:
    """The answer in the shape the request was asked in: a batch for `images` and
    `images_base64`, else one image's."""
    seen = result.images if request.return_input else None
    if request.is_batch:
        return BatchPredictResponse.answer(result.model, result.probabilities, result.scales, seen)
    return PredictResponse.answer(
        result.model, result.probabilities[0], result.scales[0], None if seen is None else seen[0]
    )


@router.post("/upload", response_model=BatchPredictResponse, responses=ERRORS)
def predict_upload(
    runtime: RuntimeDep,
    caller: ReaderDep,
    client: ReaderClientIdDep,
    file: Annotated[
        list[UploadFile],
        File(description="PNG or JPEG files of digits", json_schema_extra={"minItems": 1}),
    ],
    model: Annotated[ModelName, Form()] = "best",
    return_input: Annotated[
        bool, Form(description="also answer each image as the model saw it, 28x28 in 0-1")
    ] = False,
) -> BatchPredictResponse:
    """Multipart upload of one or more photos or drawings; each is normalised like MNIST."""
    limit = runtime.settings.max_image_bytes
    files = [(upload.filename or "upload", upload.file.read(limit + 1)) for upload in file]
    owner = ownership.prediction_owner(caller, class_reads=runtime.settings.class_reads)
    result = runtime.predictions.predict_files(model, files, client=client, owner_id=owner)
    return BatchPredictResponse.answer(
        result.model, result.probabilities, result.scales, result.images if return_input else None
    )
