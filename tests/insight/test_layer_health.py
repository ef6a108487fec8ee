"""Layer health from real trainings on 2,000 images: each gradient diagnostic is raised by a net
built to show it, and absent on the notebook's healthy LeakyReLU + He net."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from service.domain import EpochRecord
from service.insight.diagnostics import diagnose
from service.insight.layers import EpochLayers, LayerStats
from service.ml.data import Split, load_mnist, split
from service.ml.train import TrainingResult, train
from service.spec.experiment import ExperimentSpec
from tests.helpers import MNIST_PATH, KeptMessages

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


LEAKY_HE = [
    {"type": "Dense", "units": 300, "kernel_initializer": "he_normal"},
    {"type": "LeakyReLU"},
    {"type": "Dense", "units": 100, "kernel_initializer": "he_normal"},
    {"type": "LeakyReLU"},
]
NOTEBOOK_SGD = {"type": "SGD", "learning_rate": 0.001}
GRADIENT_KINDS = {"vanishing_gradients", "exploding_gradients", "dying_relu", "saturation"}


def kinds(result_history: list, layers: list) -> set[str]:
    return {finding.kind for finding in diagnose(result_history, layers, finished=True)}


def test_healthy_leaky_relu_net_has_stats_for_every_epoch_and_no_gradient_warning() -> None:
    result, recorder = train_small(spec_of(LEAKY_HE, NOTEBOOK_SGD, epochs=3))

    assert sorted(recorder.layers) == [1, 2, 3]
    for layers in recorder.layers.values():
        assert [layer.name for layer in layers] == ["dense", "dense_1", "dense_2"]
        assert [layer.depth for layer in layers] == [1, 2, 3]
        assert [layer.activation for layer in layers] == ["leaky_relu", "leaky_relu", "softmax"]
        for layer in layers:
            assert layer.weight == "kernel"
            assert layer.gradient_norm is not None
            assert layer.gradient_norm > 0
            assert layer.weight_norm is not None
            assert layer.weight_norm > 0
            assert layer.update_ratio is not None
            assert 0 < layer.update_ratio < 1
            assert layer.activation_std is not None
            assert layer.activation_std > 0
        assert layers[-1].saturated_fraction is not None  # softmax is measured, not diagnosed
    assert not kinds(result.history, recorder.epochs()) & GRADIENT_KINDS


def test_deep_sigmoid_net_with_poor_initialisation_is_flagged_vanishing() -> None:
    sigmoid = {"type": "Dense", "units": 100, "activation": "sigmoid"}
    hidden = [{**sigmoid, "kernel_initializer": "random_normal"} for _ in range(8)]
    result, recorder = train_small(spec_of(hidden, NOTEBOOK_SGD, epochs=2))

    findings = diagnose(result.history, recorder.epochs(), finished=True)
    vanishing = [finding for finding in findings if finding.kind == "vanishing_gradients"]
    assert len(vanishing) == 1, findings
    evidence = vanishing[0].evidence
    assert evidence["epochs"] == [1, 2]
    assert evidence["ratio_last_to_first"] > 1e4
    norms = list(evidence["gradient_norms"].values())
    assert norms == sorted(norms), "the gradient shrinks layer by layer towards the input"
    assert "he_normal" in vanishing[0].suggestion


def test_relus_driven_by_a_huge_learning_rate_are_flagged_dead() -> None:
    relu = {"type": "Dense", "units": 100, "activation": "relu"}
    result, recorder = train_small(
        spec_of([relu, relu, relu], {"type": "Adam", "learning_rate": 0.1})
    )

    found = [f for f in diagnose(result.history, recorder.epochs(), finished=True)]
    dying = [finding for finding in found if finding.kind == "dying_relu"]
    assert len(dying) == 1, found
    assert max(dying[0].evidence["dead_fraction"].values()) >= 0.5
    healthy = train_small(spec_of([relu, relu], {"type": "Adam"}))
    assert "dying_relu" not in kinds(healthy[0].history, healthy[1].epochs())


def test_sigmoid_units_pushed_to_their_bounds_are_flagged_saturated() -> None:
    saturating = {
        "type": "Dense",
        "units": 100,
        "activation": "sigmoid",
        "kernel_initializer": "ones",
    }
    result, recorder = train_small(spec_of([saturating, saturating], NOTEBOOK_SGD, epochs=1))

    found = diagnose(result.history, recorder.epochs(), finished=True)
    saturation = [finding for finding in found if finding.kind == "saturation"]
    assert len(saturation) == 1, found
    assert saturation[0].evidence["saturated_fraction"]["dense"] == 1.0
    assert "sigmoid" in saturation[0].message


def test_layer_health_off_records_nothing() -> None:
    result, recorder = train_small(spec_of(LEAKY_HE, NOTEBOOK_SGD, epochs=1, layer_health=False))

    assert recorder.layers == {}
    assert len(result.history) == 1


def test_batch_normalization_is_measured_by_its_gamma_and_left_out_of_the_gradient_ratio() -> None:
    hidden = [
        {"type": "BatchNormalization"},
        {"type": "Dense", "units": 50, "activation": "relu"},
    ]
    result, recorder = train_small(spec_of(hidden, NOTEBOOK_SGD, epochs=1))

    layers = recorder.layers[1]
    assert [(layer.type, layer.weight) for layer in layers] == [
        ("BatchNormalization", "gamma"),
        ("Dense", "kernel"),
        ("Dense", "kernel"),
    ]
    assert all(math.isfinite(layer.gradient_norm or 0.0) for layer in layers)
    assert not kinds(result.history, recorder.epochs()) & GRADIENT_KINDS


def test_one_process_training_many_nets_never_retraces_the_probe() -> None:
    """A warm training process runs a study's trials one after another: TensorFlow warned
    `5 out of the last 9 calls to <function LayerHealth...probe> triggered tf.function
    retracing` when each training traced a probe of its own."""
    kept = KeptMessages()
    tensorflow_log = logging.getLogger("tensorflow")
    tensorflow_log.addHandler(kept)
    try:
        for units in (16, 24, 32, 40, 48, 56):
            hidden = [{"type": "Dense", "units": units, "activation": "relu"}]
            _, recorder = train_small(spec_of(hidden, {"type": "Adam"}, epochs=1))
            assert recorder.layers[1][0].gradient_norm is not None
    finally:
        tensorflow_log.removeHandler(kept)
    retraced = [m for m in kept.messages if "retracing" in m and "LayerHealth" in m]
    assert not retraced, retraced
