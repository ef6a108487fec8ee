"""Servable models -> warm predictors: the LRU ModelCache in front of the model store."""

from __future__ import annotations

from pathlib import Path

from service.domain import ServableModel
from service.errors import ModelNotReady
from service.ml.inference import ModelCache, Predictor, load_keras_model
from service.storage import ModelStore


class ModelLoader:
    """Each model is read from the store (downloaded into `download_dir` when the store is
    remote) and loaded once; `cache` keeps the warm ones."""

    def __init__(self, *, store: ModelStore, cache: ModelCache, download_dir: Path) -> None:
        self.store = store
        self.cache = cache
        self.download_dir = download_dir

    def predictor(self, model: ServableModel) -> Predictor:
        """The model's warm predictor, loading it first when it is not (ModelNotReady: no file)."""
        return self.cache.get(model.experiment_id, lambda: load_keras_model(self._file(model)))

    def is_warm(self, model: ServableModel) -> bool:
        return model.experiment_id in self.cache

    def evict(self, experiment_id: str) -> None:
        self.cache.evict(experiment_id)

    def close(self) -> None:
        """Drop every warm model; a load in flight finishes for its callers but is not kept."""
        self.cache.clear()

    def _file(self, model: ServableModel) -> Path:
        """The saved model as a local file."""
        key = self.store.key_of(model.model_uri)
        if self.store.is_local:
            path = Path(self.store.root) / key
        else:
            try:
                path = self.store.get_file(
                    key, self.download_dir / model.experiment_id / "model.keras"
                )
            except FileNotFoundError:
                raise _file_missing(model) from None
        if not path.is_file():
            raise _file_missing(model)
        return path


def _file_missing(model: ServableModel) -> ModelNotReady:
    return ModelNotReady(
        f"the model file of experiment {model.experiment_id} is missing from the model "
        "store; retrain it or choose another model"
    )
