"""Answering a prediction: the request's images, the model it names, one forward pass for the
batch; and whether a request may be answered on the event loop at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service import metrics
from service.domain import Change, ImagesToPredict, ServableModel
from service.mnist import AssumedScale
from service.serving.batching import MicroBatcher
from service.serving.decoding import ImageDecoder
from service.serving.loader import ModelLoader
from service.serving.preloader import ModelPreloader
from service.serving.resolver import ModelResolver

# A request of at most this many pixel lists, for a reference resolved moments ago to a model
# already warm, is answered on the event loop: its work is under a millisecond, and the hop to
# a worker thread and back costs a good part of that again on a busy machine.
INLINE_MAX_IMAGES = 4


def few_enough_for_the_loop(images: int) -> bool:
    """Whether `images` decoded images are few enough to answer on the event loop (with a warm
    model): the one home of INLINE_MAX_IMAGES, for /predict, its hot path and the v2 infer."""
    return images <= INLINE_MAX_IMAGES


@dataclass(frozen=True, slots=True)
class Prediction:
    """One forward pass: the model that answered, float32 [n, 10] probabilities, the pixel
    scale assumed for each image (None for an encoded one), and the float32 [n, 28, 28] images
    the model was given (after MNIST-style normalisation)."""

    model: ServableModel
    probabilities: np.ndarray
    scales: list[AssumedScale | None]
    images: np.ndarray


class Predictions:
    """What the predict routes ask for, from a resolver, a loader and a decoder built once."""

    def __init__(
        self,
        *,
        resolver: ModelResolver,
        loader: ModelLoader,
        decoder: ImageDecoder,
        batcher: MicroBatcher | None = None,
        preloader: ModelPreloader | None = None,
    ) -> None:
        self.resolver = resolver
        self.loader = loader
        self.decoder = decoder
        self.batcher = batcher  # None: each request has its own forward pass
        self.preloader = preloader  # None: a model is loaded by the first request for it
        self._counters: dict[str, tuple[Any, Any]] = {}

    def warm_model(self, request: ImagesToPredict) -> ServableModel | None:
        """The model to answer on the event loop with, or None when answering could block.

        Only for a few pixel lists (no decoding), a reference still remembered (no query) and
        a model already loaded. A model evicted between this check and the answer (another one
        loading at capacity) would be loaded by the caller: one slow request, never a wrong one.
        """
        if request.encoded:
            return None  # decoding takes milliseconds, a large image seconds
        if not few_enough_for_the_loop(request.count):
            return None
        return self.warm(request.model)

    def warm(self, reference: str) -> ServableModel | None:
        """The model `reference` names when that is known without a query and it is loaded."""
        model = self.resolver.recent(reference)
        if model is None:
            return None
        model = self._answering(reference, model)
        return model if self.loader.is_warm(model) else None

    def model(
        self, reference: str, *, owner_id: str | None = None, exactly: bool = False
    ) -> ServableModel:
        """The model that answers `reference` now: what it names, or, while that loads in the
        background, briefly what it named before (see `service.serving.preloader`). `owner_id`
        (a student while CLASS_READS=own): among theirs only. `exactly`: what it names, loaded
        on this request if need be (a version was asked for)."""
        if owner_id is not None:
            return self.resolver.resolve_owned(reference, owner_id)
        model = self.resolver.resolve(reference)
        return model if exactly else self._answering(reference, model)

    def _answering(self, reference: str, model: ServableModel) -> ServableModel:
        if self.preloader is None:
            return model
        return self.preloader.model_for(reference, model)

    def predict(
        self,
        request: ImagesToPredict,
        model: ServableModel | None = None,
        *,
        client: str,
        owner_id: str | None = None,
    ) -> Prediction:
        """The request's images through `model`, or through the model its reference names
        (among `owner_id`'s, when given); `client` pays for the decoding.

        The model is resolved first: a request naming no model costs no decoding."""
        if model is None:
            model = self.model(request.model, owner_id=owner_id)
        batch, scales = self.decoder.request_batch(request, client=client)
        return Prediction(model, self._forward(model, batch), scales, batch)

    async def predict_warm(
        self, request: ImagesToPredict, model: ServableModel, *, client: str
    ) -> Prediction:
        """`predict` on the event loop for a `warm_model`, micro-batched when that is on."""
        batch, scales = self.decoder.request_batch(request, client=client)
        return Prediction(model, await self.forward_warm(model, batch), scales, batch)

    def predict_images(
        self,
        reference: str,
        batch: np.ndarray,
        *,
        exactly: bool = False,
        owner_id: str | None = None,
    ) -> Prediction:
        """float32 [n, 28, 28] images in [0, 1] through the model `reference` names (see
        `model`)."""
        self.decoder.check_batch_size(len(batch))
        model = self.model(reference, owner_id=owner_id, exactly=exactly)
        return Prediction(model, self._forward(model, batch), [None] * len(batch), batch)

    async def forward_warm(self, model: ServableModel, batch: np.ndarray) -> np.ndarray:
        """Probabilities for a few images through a warm model, answered on the event loop;
        a single image shares its forward pass with others that arrive with it (micro-batching)."""
        if self.batcher is None or len(batch) != 1:
            return self._forward(model, batch)
        predictor = self.loader.predictor(model)
        self._count(model, 1)
        return await self.batcher.forward(model.experiment_id, predictor.predict, batch)

    def predict_files(
        self,
        reference: str,
        files: list[tuple[str, bytes]],
        *,
        client: str,
        owner_id: str | None = None,
    ) -> Prediction:
        """Uploaded files as (name, content) through the model `reference` names (among
        `owner_id`'s, when given), in order; `client` pays for the decoding."""
        model = self.model(reference, owner_id=owner_id)
        batch = self.decoder.upload_batch(files, client=client)
        return Prediction(model, self._forward(model, batch), [None] * len(files), batch)

    def _forward(self, model: ServableModel, batch: np.ndarray) -> np.ndarray:
        probabilities = self.loader.predictor(model).predict(batch)
        self._count(model, len(batch))
        return probabilities

    def _count(self, model: ServableModel, images: int) -> None:
        children = self._counters.get(model.experiment_id)
        if children is None:
            children = self._counters[model.experiment_id] = (
                metrics.PREDICTIONS.labels(model.experiment_id),
                metrics.PREDICT_BATCH.labels(model.experiment_id),
            )
        children[0].inc(images)
        children[1].observe(images)

    def forget(self, experiment_id: str) -> None:
        """An experiment was deleted: drop its warm model and every reference to it."""
        self.loader.evict(experiment_id)
        self.resolver.forget(experiment_id)
        if self.preloader is not None:
            self.preloader.forget(experiment_id)
        self._counters.pop(experiment_id, None)

    def changed(self, changes: list[Change]) -> None:
        """What the change feed read (on the event loop: nothing here blocks). A deleted
        experiment's model is dropped here too, whichever API process deleted it; a model that
        succeeded or was deleted may move `best`, `latest` or an alias."""
        for change in changes:
            if change.deletes_experiment:
                self.forget(change.experiment_id)
        if self.preloader is not None and any(change.may_move_models for change in changes):
            succeeded = [
                c.experiment_id for c in changes if c.may_move_models and not c.deletes_experiment
            ]
            self.preloader.models_changed(succeeded)

    def alias_moved(self, alias: str) -> None:
        if self.preloader is not None:
            self.preloader.alias_moved(alias)

    def start(self) -> None:
        if self.preloader is not None:
            self.preloader.start()

    def close(self) -> None:
        if self.preloader is not None:
            self.preloader.close()
        self.resolver.close()
        self.loader.close()
