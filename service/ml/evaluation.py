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
    original uint8 values (evaluate_probabilities turns back only the images it keeps).
    """
    probabilities = predict_probabilities(model, x_test, batch_size=batch_size)
    return evaluate_probabilities(probabilities, y_test, x_test, mistakes=mistakes)


def predict_probabilities(model: keras.Model, x: np.ndarray, *, batch_size: int) -> np.ndarray:
    """`model.predict(x, batch_size=batch_size)`, bit for bit, in about half its time.

    `model.predict` builds a tf.data pipeline over `x` on every call, a large part of its time
    on the test set. This hands the model's own predict function the same batches in the same
    groups of `steps_per_execution` that `predict` would, so it runs the same kernels on the
    same shapes. The batches keep their sizes, a short last one included: padded to a full
    batch, its rows' probabilities differed from `predict`'s in the last bits (measured). A
    kept model (traced.py) finds its function traced for these shapes by its last job:
    TensorFlow traces nothing again.
    """
    if not len(x):
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    model.make_predict_function()
    batches = [(x[start : start + batch_size],) for start in range(0, len(x), batch_size)]
    per_call = model.steps_per_execution
    outputs = [
        np.asarray(model.predict_function(batches[first : first + per_call]))
        for first in range(0, len(batches), per_call)
    ]
    return np.concatenate(outputs)
