"""A model's test-set evaluation, computed from its predicted probabilities in one pass.

The confusion matrix, per-class scores, the most confidently wrong images (with their pixels,
so the API can draw them without MNIST or TensorFlow), and the loss and accuracy, all from the
same probabilities: the accuracy is the matrix's trace over its sum, by construction.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from service.mnist import CLASSES, IMAGE_SHAPE

MISTAKES_KEPT = 25
# Keras clips probabilities to [epsilon, 1 - epsilon] before taking the log in its
# cross-entropy; the same clip makes our loss Keras's loss.
KERAS_EPSILON = 1e-7


@dataclass(frozen=True)
class ClassScores:
    digit: int
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Mistake:
    """A test image the model got wrong; `pixels` is the 28x28 uint8 image, row by row."""

    index: int
    true: int
    predicted: int
    probability: float
    """The probability the model gave its (wrong) prediction."""
    true_probability: float
    pixels: bytes

    def image(self) -> np.ndarray:
        return np.frombuffer(self.pixels, dtype=np.uint8).reshape(IMAGE_SHAPE)


@dataclass(frozen=True)
class Evaluation:
    test_loss: float
    test_accuracy: float
    confusion: list[list[int]]
    """confusion[true][predicted]: how many test images of digit `true` were read as `predicted`."""
    classes: list[ClassScores]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    mistakes: list[Mistake]
    """The most confidently wrong, most confident first."""
    correct: bytes | None = None
    """Which test images it read right, one bit each in order (numpy.packbits): what a
    challenge scores its halves from. None in evaluations made before it was kept."""

    @property
    def total(self) -> int:
        return int(sum(map(sum, self.confusion)))

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        for mistake in body["mistakes"]:
            mistake["pixels"] = base64.b64encode(mistake["pixels"]).decode("ascii")
        if self.correct is not None:
            body["correct"] = base64.b64encode(self.correct).decode("ascii")
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Evaluation:
        return cls(
            test_loss=body["test_loss"],
            test_accuracy=body["test_accuracy"],
            confusion=body["confusion"],
            classes=[ClassScores(**scores) for scores in body["classes"]],
            macro_precision=body["macro_precision"],
            macro_recall=body["macro_recall"],
            macro_f1=body["macro_f1"],
            mistakes=[
                Mistake(**{**mistake, "pixels": base64.b64decode(mistake["pixels"])})
                for mistake in body["mistakes"]
            ],
            correct=base64.b64decode(body["correct"]) if body.get("correct") else None,
        )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    safe = np.where(denominator == 0, 1, denominator)
    return np.where(denominator == 0, 0.0, numerator / safe)


def _most_confident_mistakes(
    probabilities: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    images: np.ndarray,
    *,
    keep: int,
) -> list[Mistake]:
    """The `keep` wrong answers given with the highest probability, the surest first."""
    wrong = np.flatnonzero(predicted != labels)
    confident = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")]
    return [
        Mistake(
            index=int(index),
            true=int(labels[index]),
            predicted=int(predicted[index]),
            probability=float(probabilities[index, predicted[index]]),
            true_probability=float(probabilities[index, labels[index]]),
            pixels=_pixels(images[index]).tobytes(),
        )
        for index in confident[:keep]
    ]


def _pixels(image: np.ndarray) -> np.ndarray:
    """An image's uint8 pixels, from uint8 or from the notebook's floats (pixels / 255, which
    x * 255 rounds back exactly)."""
    if image.dtype != np.uint8:
        image = np.rint(image * 255.0)
    return np.ascontiguousarray(image, dtype=np.uint8)


def evaluate_probabilities(
    probabilities: np.ndarray,
    labels: np.ndarray,
    images: np.ndarray,
    *,
    mistakes: int = MISTAKES_KEPT,
) -> Evaluation:
    """Everything the evaluation says, from the model's (n, 10) probabilities on n images.

    `images` are the same n images (n, 28, 28), as uint8 or as the notebook's floats in
    [0, 1]; only the kept mistakes' are turned into pixels (all 10,000 cost more than the rest
    of the evaluation).
    """
    labels = labels.astype(np.int64)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((CLASSES, CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    precision = _ratio(hits, confusion.sum(axis=0).astype(np.float64))
    recall = _ratio(hits, support.astype(np.float64))
    f1 = _ratio(2 * precision * recall, precision + recall)
    true_probability = probabilities[np.arange(len(labels)), labels]
    clipped = np.clip(true_probability.astype(np.float64), KERAS_EPSILON, 1 - KERAS_EPSILON)
    return Evaluation(
        test_loss=float(-np.log(clipped).mean()),
        test_accuracy=float(hits.sum() / len(labels)),
        confusion=confusion.tolist(),
        classes=[
            ClassScores(
                digit=digit,
                precision=float(precision[digit]),
                recall=float(recall[digit]),
                f1=float(f1[digit]),
                support=int(support[digit]),
            )
            for digit in range(CLASSES)
        ],
        macro_precision=float(precision.mean()),
        macro_recall=float(recall.mean()),
        macro_f1=float(f1.mean()),
        mistakes=_most_confident_mistakes(probabilities, labels, predicted, images, keep=mistakes),
        correct=np.packbits(predicted == labels).tobytes(),
    )
