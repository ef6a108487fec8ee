"""An evaluation asked for after the training: the slot's warm training process runs it.

Experiments trained before evaluations existed get theirs when someone asks for it
(`GET /experiments/{id}/evaluation` answers 202 and queues `evaluate_experiment`). Like a
training, it runs in the slot's spawned training process (the supervisor sends it the job
line `<experiment_id> evaluate`), which has TensorFlow and MNIST loaded already: never in a
process that may fork after loading TensorFlow, and never in the API. `python -m
service.worker.evaluation <experiment_id>` evaluates one in a process of its own.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from service import logs
from service.config import Settings
from service.db import insight, repository
from service.db.session import Database
from service.domain import Status
from service.storage import store_from_settings
from service.worker.lifeline import watch_parent
from service.worker.priority import lower_priority
from service.worker.protocol import EXIT_EVALUATION_FAILED, EXIT_OK

log = logging.getLogger(__name__)


def _record_failure(settings: Settings, experiment_id: str, error: str) -> None:
    """The evaluation failed: say so where its result would be."""
    db = Database(settings.database_url)
    try:
        with db.scope() as session:
            insight.fail_evaluation(session, experiment_id=experiment_id, error=error)
    finally:
        db.dispose()


def evaluate_experiment(settings: Settings, experiment_id: str) -> None:
    """Load the experiment's saved model and MNIST's test set, evaluate, store the result."""
    from service.ml import data as mnist
    from service.ml.evaluation import evaluate_model
    from service.ml.inference import load_keras_model

    db = Database(settings.database_url)
    try:
        with db.scope() as session:
            experiment = repository.get_experiment(session, experiment_id)
        if experiment.status is not Status.SUCCEEDED or not experiment.model_uri:
            log.info("experiment %s has no model to evaluate; skipping", experiment_id)
            return
        store = store_from_settings(settings)
        split = mnist.split(mnist.load_mnist(settings.mnist_path), validation_size=0)
        with tempfile.TemporaryDirectory(dir=_scratch(settings)) as scratch:
            local = store.get_file(
                store.stored_key(experiment.model_uri), Path(scratch, "model.keras")
            )
            evaluation = evaluate_model(load_keras_model(local), split.x_test, split.y_test)
        with db.scope() as session:
            insight.save_evaluation(session, experiment_id=experiment_id, evaluation=evaluation)
        log.info("evaluated experiment %s: accuracy %.4f", experiment_id, evaluation.test_accuracy)
    finally:
        db.dispose()


def _scratch(settings: Settings) -> str:
    Path(settings.work_dir).mkdir(parents=True, exist_ok=True)
    return settings.work_dir


def evaluate(settings: Settings, experiment_id: str) -> int:
    """Evaluate, recording a failure; EXIT_OK, or EXIT_EVALUATION_FAILED."""
    try:
        evaluate_experiment(settings, experiment_id)
    except Exception as error:
        log.exception("evaluation of %s failed", experiment_id)
        message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        _record_failure(settings, experiment_id, f"the evaluation failed: {message}")
        return EXIT_EVALUATION_FAILED
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    watch_parent()
    settings = Settings()
    lower_priority(settings.training_niceness)  # background work, like a training
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m service.worker.evaluation <experiment_id>", file=sys.stderr)
        return 2
    # LOG_FORMAT and LOG_LEVEL as in the worker that started it; TF_CPP_MIN_LOG_LEVEL too.
    logs.configure(text_format=logs.role_format("evaluation"))
    return evaluate(settings, args[0])


if __name__ == "__main__":
    sys.exit(main())
