"""Answering a prediction: the request's images, the model it names, one forward pass for the
batch; and whether a request may be answered on the event loop at all."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.domain import ServableModel
from service.mnist import AssumedScale
from service.schemas.predict import PredictRequest
from service.serving.decoding import ImageDecoder
from service.serving.loader import ModelLoader
from service.serving.resolver import ModelResolver

# A request of at most this many pixel lists, for a reference resolved moments ago to a model
# already warm, is answered on the event loop: its work is under a millisecond, and the hop to
# a worker thread and back costs a good part of that again on a busy machine.
INLINE_MAX_IMAGES = 4


@dataclass(frozen=True, slots=True)
class Prediction:
    """One forward pass: the model that answered, float32 [n, 10] probabilities, and the pixel
    scale assumed for each image (None for an encoded one)."""

    model: ServableModel
    probabilities: np.ndarray
    scales: list[AssumedScale | None]


class Predictions:
    """What the predict routes ask for, from a resolver, a loader and a decoder built once."""

    def __init__(
        self, *, resolver: ModelResolver, loader: ModelLoader, decoder: ImageDecoder
    ) -> None:
        self.resolver = resolver
        self.loader = loader
        self.decoder = decoder

    def warm_model(self, request: PredictRequest) -> ServableModel | None:
        """The model to answer on the event loop with, or None when answering could block.

        Only for a few pixel lists (no decoding), a reference still remembered (no query) and
        a model already loaded. A model evicted between this check and the answer (another one
        loading at capacity) would be loaded by the caller: one slow request, never a wrong one.
        """
        if request.image is None and request.images is None:
            return None  # encoded images: decoding takes milliseconds, large ones seconds
        if request.batch_size > INLINE_MAX_IMAGES:
            return None
        model = self.resolver.recent(request.model)
        return model if model is not None and self.loader.is_warm(model) else None

    def predict(self, request: PredictRequest, model: ServableModel | None = None) -> Prediction:
        """The request's images through `model`, or through the model its reference names.

        The model is resolved first: a request naming no model costs no decoding."""
        if model is None:
            model = self.resolver.resolve(request.model)
        batch, scales = self.decoder.request_batch(request)
        return Prediction(model, self.loader.predictor(model).predict(batch), scales)

    def predict_files(self, reference: str, files: list[tuple[str, bytes]]) -> Prediction:
        """Uploaded files as (name, content) through the model `reference` names, in order."""
        model = self.resolver.resolve(reference)
        batch = self.decoder.upload_batch(files)
        return Prediction(model, self.loader.predictor(model).predict(batch), [None] * len(files))

    def forget(self, experiment_id: str) -> None:
        """An experiment was deleted: drop its warm model and every reference to it."""
        self.loader.evict(experiment_id)
        self.resolver.forget(experiment_id)

    def close(self) -> None:
        self.loader.close()
