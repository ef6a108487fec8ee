"""Servable models -> warm predictors: the LRU ModelCache in front of the model store."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from service import metrics
from service.domain import ServableModel
from service.errors import ModelNotReady, ServiceError, StoreUnavailable
from service.ml.inference import ModelCache, Predictor, load_keras_model
from service.storage import ModelStore

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

LoadedBy = Literal["request", "preloader"]


class ModelLoader:
    """Each model is read from the store (downloaded into a temporary folder under
    `download_dir`, removed once loaded, when the store is remote) and loaded once; `cache`
    keeps the warm ones. Every failure is a ServiceError that says what happened."""

    def __init__(self, *, store: ModelStore, cache: ModelCache, download_dir: Path) -> None:
        self.store = store
        self.cache = cache
        self.download_dir = download_dir

    def predictor(self, model: ServableModel, *, by: LoadedBy = "request") -> Predictor:
        """The model's warm predictor, loading it first when it is not: ModelNotReady when its
        file is missing or unreadable, StoreUnavailable when the store fails, UnsafeKey when
        the row names something outside the store. `by` says who waits for a load (counted in
        `mnist_model_loads_total`); a load already in flight is shared whoever started it."""
        return self.cache.get(model.experiment_id, lambda: self._counted_load(model, by))

    def is_warm(self, model: ServableModel) -> bool:
        return model.experiment_id in self.cache

    def evict(self, experiment_id: str) -> None:
        self.cache.evict(experiment_id)

    def close(self) -> None:
        """Drop every warm model; a load in flight finishes for its callers but is not kept."""
        self.cache.clear()

    def _counted_load(self, model: ServableModel, by: LoadedBy) -> keras.Model:
        metrics.MODEL_LOADS.labels(by).inc()
        return self._load(model)

    def _load(self, model: ServableModel) -> keras.Model:
        key = self.store.stored_key(model.model_uri)
        try:
            if self.store.is_local:
                return _read(Path(self.store.root) / key, model)
            self.download_dir.mkdir(parents=True, exist_ok=True)
            # A folder of its own per load, gone once the model is in memory: nothing piles up
            # in WORK_DIR, and two loads of one model never share a half-written file.
            with tempfile.TemporaryDirectory(dir=self.download_dir) as folder:
                return _read(self.store.get_file(key, Path(folder) / "model.keras"), model)
        except ServiceError:
            raise
        except FileNotFoundError:
            raise _file_missing(model) from None
        except OSError as error:  # a disk, mount or network failure of the store, S3 included
            log.warning("model store failed for %s: %r", model.experiment_id, error)
            raise StoreUnavailable(
                f"the model store failed while reading the model of experiment "
                f"{model.experiment_id} ({type(error).__name__}); try again shortly"
            ) from None


def _read(path: Path, model: ServableModel) -> keras.Model:
    if not path.is_file():
        raise _file_missing(model)
    try:
        return load_keras_model(path)
    except FileNotFoundError:
        raise  # deleted while it was being read: the experiment is being removed
    except Exception as error:  # a truncated or foreign file: Keras raises many kinds
        raise ModelNotReady(
            f"the model file of experiment {model.experiment_id} could not be loaded "
            f"({type(error).__name__}); retrain it or choose another model"
        ) from None


def _file_missing(model: ServableModel) -> ModelNotReady:
    return ModelNotReady(
        f"the model file of experiment {model.experiment_id} is missing from the model "
        "store; retrain it or choose another model"
    )
