"""Evaluate a trained model on the test set: one forward pass, everything computed from it."""

from __future__ import annotations

import keras
import numpy as np

from service.insight.evaluation import MISTAKES_KEPT, Evaluation, evaluate_probabilities

EVALUATION_BATCH = 1024


def evaluate_model(
    model: keras.Model,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    mistakes: int = MISTAKES_KEPT,
    batch_size: int = EVALUATION_BATCH,
) -> Evaluation:
    """The confusion matrix, scores, mistakes, loss and accuracy of `model` on (x_test, y_test).

    `x_test` is the notebook's float images in [0, 1]; the mistakes keep their pixels as the
    original uint8 values (x * 255 is exact for images made by dividing by 255).
    """
    probabilities = np.asarray(model.predict(x_test, batch_size=batch_size, verbose=0))
    images = np.rint(x_test * 255.0).astype(np.uint8)
    return evaluate_probabilities(probabilities, y_test, images, mistakes=mistakes)
