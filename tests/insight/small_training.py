"""Real Keras trainings on a few thousand MNIST images, recording layer health like a worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from service.domain import EpochRecord
from service.insight.layers import EpochLayers, LayerStats
from service.ml.data import Split, load_mnist, split
from service.ml.train import TrainingResult, train
from service.spec.experiment import ExperimentSpec
from tests.conftest import MNIST_PATH

TRAIN_IMAGES = 2000
VALIDATION_IMAGES = 512


@lru_cache(maxsize=1)
def small_split() -> Split:
    return split(load_mnist(MNIST_PATH), validation_size=VALIDATION_IMAGES, train_size=TRAIN_IMAGES)


@dataclass
class Recorder:
    """The trainer's hooks, keeping every epoch's layer health as a worker would store it."""

    layers: dict[int, list[LayerStats]] = field(default_factory=dict)

    def stop_requested(self) -> bool:
        return False

    def epoch_finished(self, model: Any, record: EpochRecord, history: list[EpochRecord]) -> bool:
        return True

    def layers_measured(self, epoch: int, layers: list[LayerStats]) -> None:
        self.layers[epoch] = layers

    def epochs(self) -> list[EpochLayers]:
        return [EpochLayers(epoch, layers) for epoch, layers in sorted(self.layers.items())]


def spec_of(
    hidden: list[dict[str, Any]], optimizer: dict[str, Any], *, epochs: int = 3, **fit: Any
) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "layers": [
                {"type": "Flatten"},
                *hidden,
                {"type": "Dense", "units": 10, "activation": "softmax"},
            ],
            "compile": {"optimizer": optimizer},
            "fit": {
                "epochs": epochs,
                "batch_size": 64,
                "validation_size": VALIDATION_IMAGES,
                "train_size": TRAIN_IMAGES,
                **fit,
            },
        }
    )


def train_small(spec: ExperimentSpec) -> tuple[TrainingResult, Recorder]:
    recorder = Recorder()
    return train(spec, small_split(), hooks=recorder), recorder
