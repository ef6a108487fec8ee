"""A trial's evaluation on the test set, the old way and the service's, in one process.

Old: `model.predict` (a tf.data pipeline over the 10,000 images every call) and every image
turned back into uint8 pixels. The service's (service/ml/evaluation.py): the model's own
predict function over the same batches, pixels for the kept mistakes only. Per net, after an
epoch on 2,000 images as a study's trial, the two alternate `--rounds` times; each round checks
that the evaluations are equal, and that a last batch padded to a full one would not be.

    MNIST_PATH=../shared/data/mnist.npz python bench/evaluation.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import keras
import numpy as np

from service.insight.evaluation import Evaluation, evaluate_probabilities
from service.ml.data import load_mnist, split
from service.ml.evaluation import EVALUATION_BATCH, evaluate_model
from service.ml.train import train
from service.spec.experiment import ExperimentSpec
from service.spec.notebook import NETS, notebook_spec


def old_evaluation(model: keras.Model, x: np.ndarray, y: np.ndarray) -> Evaluation:
    probabilities = np.asarray(model.predict(x, batch_size=EVALUATION_BATCH, verbose=0))
    return evaluate_probabilities(probabilities, y, np.rint(x * 255.0).astype(np.uint8))


def padded_probabilities(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Each batch through predict_on_batch, the last padded with zeros to a full batch."""
    outputs = []
    for start in range(0, len(x), EVALUATION_BATCH):
        batch = x[start : start + EVALUATION_BATCH]
        rows = len(batch)
        padding = np.zeros((EVALUATION_BATCH - rows, *batch.shape[1:]), batch.dtype)
        outputs.append(np.asarray(model.predict_on_batch(np.concatenate([batch, padding])))[:rows])
    return np.concatenate(outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nets", default=",".join(NETS))
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    data = split(load_mnist(os.environ.get("MNIST_PATH")), validation_size=5000, train_size=2000)
    x, y = data.x_test, data.y_test
    for net in args.nets.split(","):
        spec = notebook_spec(net)
        spec["fit"] |= {"epochs": 1, "train_size": 2000}
        model = train(ExperimentSpec.model_validate(spec), data, evaluate=False).model
        old_evaluation(model, x, y)  # both trace their function first
        reference = evaluate_model(model, x, y)
        seconds: dict[str, list[float]] = {"old": [], "service": []}
        for round_ in range(args.rounds):
            ways = [("old", old_evaluation), ("service", evaluate_model)]
            for name, way in ways if round_ % 2 else reversed(ways):
                started = time.perf_counter()
                evaluation = way(model, x, y)
                seconds[name].append(time.perf_counter() - started)
                assert evaluation == reference, f"{net}: the {name} evaluation differs"
        expected = np.asarray(model.predict(x, batch_size=EVALUATION_BATCH, verbose=0))
        padded_equal = np.array_equal(padded_probabilities(model, x), expected)
        old, new = (statistics.median(seconds[name]) for name in ("old", "service"))
        print(
            f"{net}: old {old * 1000:.0f} ms, service {new * 1000:.0f} ms ({new / old:.2f}x), "
            f"evaluations equal in all {args.rounds} rounds; a padded last batch gives "
            f"{'the same' if padded_equal else 'different'} probabilities",
            flush=True,
        )
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
