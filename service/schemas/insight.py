"""Insight bodies: the test-set evaluation, layer health by epoch, and diagnostics."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from service.domain import Status
from service.insight.diagnostics import Finding
from service.insight.evaluation import Evaluation
from service.insight.layers import EpochLayers


class ClassScoresPublic(BaseModel):
    digit: int
    precision: float
    recall: float
    f1: float
    support: int = Field(description="test images of this digit")


class MistakePublic(BaseModel):
    index: int = Field(description="the image's index in MNIST's test set")
    true: int
    predicted: int
    probability: float = Field(description="the probability the model gave its prediction")
    true_probability: float = Field(description="the probability it gave the right digit")


class EvaluationPublic(BaseModel):
    experiment_id: str
    test_loss: float
    test_accuracy: float
    confusion: list[list[int]] = Field(description="confusion[true][predicted], 10 x 10")
    classes: list[ClassScoresPublic]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    mistakes: list[MistakePublic] = Field(description="the most confidently wrong, first")

    @classmethod
    def of(cls, experiment_id: str, evaluation: Evaluation) -> EvaluationPublic:
        body = evaluation.to_json()
        body.pop("correct", None)  # per-image hits would reveal a challenge's private score
        for mistake in body["mistakes"]:
            del mistake["pixels"]
        return cls(experiment_id=experiment_id, **body)


class EvaluationPendingPublic(BaseModel):
    experiment_id: str
    status: str = Field(default="pending")
    detail: str


class LayerStatsPublic(BaseModel):
    depth: int = Field(description="1 for the first layer with weights")
    name: str
    type: str
    weight: str = Field(description="kernel, or gamma for BatchNormalization")
    activation: str
    gradient_norm: float | None
    weight_norm: float | None
    update_ratio: float | None = Field(description="|epoch's update| / |weight|")
    activation_mean: float | None
    activation_std: float | None
    dead_fraction: float | None = Field(description="ReLU family: units never positive")
    saturated_fraction: float | None = Field(
        description="sigmoid, tanh, softmax: activations within 0.01 of a bound"
    )


class EpochLayersPublic(BaseModel):
    epoch: int
    layers: list[LayerStatsPublic]


class LayersPublic(BaseModel):
    experiment_id: str
    status: Status
    probe_images: int = Field(
        description="the first N validation images every epoch is measured on"
    )
    epochs: list[EpochLayersPublic]

    @classmethod
    def of(
        cls, experiment_id: str, status: Status, probe_images: int, epochs: list[EpochLayers]
    ) -> LayersPublic:
        return cls.model_validate(
            {
                "experiment_id": experiment_id,
                "status": status,
                "probe_images": probe_images,
                "epochs": epochs,
            },
            from_attributes=True,
        )


class FindingPublic(BaseModel):
    kind: str = Field(
        description="overfitting, underfitting, too_slow, divergence, vanishing_gradients, "
        "exploding_gradients, dying_relu or saturation"
    )
    message: str
    evidence: dict[str, Any] = Field(description="the epochs and numbers that show it")
    suggestion: str = Field(description="what to try next")

    @classmethod
    def of(cls, finding: Finding) -> FindingPublic:
        return cls.model_validate(finding, from_attributes=True)
