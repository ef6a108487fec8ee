"""Answering a prediction: which model, which images, one compiled forward pass for the batch."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from service.config import Settings
from service.db import registry
from service.db.session import Database
from service.domain import ServableModel
from service.errors import InvalidInput, ModelNotReady
from service.images import AssumedScale, decode_base64_image, decode_image, pixels_to_array
from service.ml.inference import ModelCache, Predictor, load_keras_model
from service.schemas.predict import (
    BatchPredictResponse,
    ModelRef,
    PredictionPublic,
    PredictRequest,
    PredictResponse,
)
from service.storage import ModelStore

# How long "best", "latest" or an alias keeps its answer: a new model or alias is served
# within this long, and a hot path of requests costs one database query a second, not each.
RESOLVE_TTL_SECONDS = 1.0
# A request of at most this many pixel lists, for a reference resolved moments ago to a model
# already warm, is answered on the event loop: its work is under a millisecond, and the hop to
# a worker thread and back costs a good part of that again on a busy machine.
INLINE_MAX_IMAGES = 4


class Predictions:
    """Resolves model references, keeps models warm, and runs batches through them."""

    def __init__(
        self, *, settings: Settings, db: Database, store: ModelStore, cache: ModelCache
    ) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.cache = cache
        self.download_dir = Path(settings.work_dir) / "serving"
        self._resolved: dict[str, tuple[float, ServableModel]] = {}
        self._resolved_lock = threading.Lock()

    def resolve(self, reference: str) -> ServableModel:
        now = time.monotonic()
        with self._resolved_lock:
            cached = self._resolved.get(reference)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self.db.scope() as session:
            model = registry.resolve(session, reference)
        with self._resolved_lock:
            self._resolved[reference] = (now + RESOLVE_TTL_SECONDS, model)
        return model

    def warm_model(self, request: PredictRequest) -> ServableModel | None:
        """The model to answer on the event loop with, or None when answering could block.

        Only for a few pixel lists (no decoding), a reference still in its TTL (no query) and
        a model already loaded. A model evicted between this check and the answer (another one
        loading at capacity) would be loaded by the caller: one slow request, never a wrong one.
        """
        if request.image is None and request.images is None:
            return None  # encoded images: decoding takes milliseconds, large ones seconds
        if request.batch_size > INLINE_MAX_IMAGES:
            return None
        with self._resolved_lock:
            cached = self._resolved.get(request.model)
        if cached is None or cached[0] <= time.monotonic():
            return None
        model = cached[1]
        return model if model.experiment_id in self.cache else None

    def forget(self, experiment_id: str) -> None:
        """An experiment was deleted: drop its warm model and every reference to it."""
        self.cache.evict(experiment_id)
        with self._resolved_lock:
            for reference, (_, model) in list(self._resolved.items()):
                if model.experiment_id == experiment_id:
                    del self._resolved[reference]

    def predictor(self, model: ServableModel) -> Predictor:
        return self.cache.get(model.experiment_id, lambda: self._load(model))

    def _load(self, model: ServableModel) -> object:
        key = self.store.key_of(model.model_uri)
        missing = ModelNotReady(
            f"the model file of experiment {model.experiment_id} is missing from the model "
            "store; retrain it or choose another model"
        )
        if self.store.is_local:
            path = Path(self.store.root) / key
        else:
            try:
                path = self.store.get_file(
                    key, self.download_dir / model.experiment_id / "model.keras"
                )
            except FileNotFoundError:
                raise missing from None
        if not path.is_file():
            raise missing
        return load_keras_model(path)

    def images(self, request: PredictRequest) -> tuple[np.ndarray, list[AssumedScale | None]]:
        """The request's images as float32 [n, 28, 28] in [0, 1], checked before TensorFlow."""
        limit = self.settings.max_predict_batch
        if request.batch_size > limit:
            raise InvalidInput(
                f"{request.batch_size} images is over the limit of {limit} per request "
                "(MAX_PREDICT_BATCH); split the batch"
            )
        arrays: list[np.ndarray] = []
        scales: list[AssumedScale | None] = []
        if request.image is not None:
            array, scale = pixels_to_array(request.image, request.scale)
            arrays.append(array)
            scales.append(scale)
        for index, values in enumerate(request.images or []):
            array, scale = pixels_to_array(values, request.scale, field=f"images[{index}]")
            arrays.append(array)
            scales.append(scale)
        encoded = [request.image_base64] if request.image_base64 is not None else []
        fields = ["image_base64"] if encoded else []
        for index, text in enumerate(request.images_base64 or []):
            encoded.append(text)
            fields.append(f"images_base64[{index}]")
        for text, field in zip(encoded, fields, strict=True):
            arrays.append(
                decode_base64_image(
                    text,
                    max_bytes=self.settings.max_image_bytes,
                    max_pixels=self.settings.max_image_pixels,
                    field=field,
                )
            )
            scales.append(None)
        return np.stack(arrays), scales

    def uploaded(self, files: list[tuple[str, bytes]]) -> np.ndarray:
        limit = self.settings.max_predict_batch
        if not files:
            raise InvalidInput("upload at least one PNG or JPEG file in the form field 'file'")
        if len(files) > limit:
            raise InvalidInput(
                f"{len(files)} files is over the limit of {limit} per request (MAX_PREDICT_BATCH)"
            )
        return np.stack(
            [
                decode_image(
                    data,
                    max_bytes=self.settings.max_image_bytes,
                    max_pixels=self.settings.max_image_pixels,
                    field=f"file {name!r}",
                )
                for name, data in files
            ]
        )

    def answer(
        self,
        model: ServableModel,
        batch: np.ndarray,
        scales: list[AssumedScale | None],
        *,
        is_batch: bool,
        return_input: bool = False,
    ) -> PredictResponse | BatchPredictResponse:
        probabilities = self.predictor(model).predict(batch)
        predictions = [
            PredictionPublic.of(row, scale, seen if return_input else None)
            for row, scale, seen in zip(probabilities, scales, batch, strict=True)
        ]
        ref = ModelRef.of(model)
        if is_batch:
            return BatchPredictResponse(predictions=predictions, model=ref)
        return PredictResponse.single(predictions[0], ref)

    def predict(
        self, request: PredictRequest, model: ServableModel | None = None
    ) -> PredictResponse | BatchPredictResponse:
        """Answer the request with `model`, or with the model its reference resolves to."""
        batch, scales = self.images(request)
        if model is None:
            model = self.resolve(request.model)
        return self.answer(
            model, batch, scales, is_batch=request.is_batch, return_input=request.return_input
        )

    def predict_files(
        self, model_reference: str, files: list[tuple[str, bytes]], *, return_input: bool = False
    ) -> BatchPredictResponse:
        """Uploaded files as (name, content): one answer each, in order."""
        batch = self.uploaded(files)
        answer = self.answer(
            self.resolve(model_reference),
            batch,
            [None] * len(files),
            is_batch=True,
            return_input=return_input,
        )
        assert isinstance(answer, BatchPredictResponse)
        return answer
