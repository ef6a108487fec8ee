"""An evaluation asked for after the training: the worker runs it in a fresh interpreter.

Experiments trained before evaluations existed get theirs when someone asks for it
(`GET /experiments/{id}/evaluation` answers 202 and queues `evaluate_experiment`). Like a
training, it runs in a spawned `python -m service.worker.evaluation <experiment_id>`, never in
a process that may fork after loading TensorFlow, and never in the API.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from pathlib import Path

from service import logs
from service.config import Settings
from service.db import insight, repository
from service.db.session import Database
from service.domain import Status
from service.storage import store_from_settings
from service.worker.lifeline import child_env, watch_parent
from service.worker.priority import lower_priority

log = logging.getLogger(__name__)

# One forward pass over 10,000 images takes seconds; this only stops a process that hangs.
EVALUATION_TIMEOUT_SECONDS = 600.0
EXIT_OK = 0
EXIT_FAILURE_RECORDED = 1


def run_evaluation_job(settings: Settings, experiment_id: str) -> None:
    """The worker's handler: evaluate in a child process, and record a failure it cannot."""
    process = subprocess.Popen(
        [sys.executable, "-m", "service.worker.evaluation", experiment_id], env=child_env()
    )
    try:
        code = process.wait(timeout=EVALUATION_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    if code not in (EXIT_OK, EXIT_FAILURE_RECORDED):
        _record_failure(settings, experiment_id, f"the evaluation process died (exit code {code})")


def _record_failure(settings: Settings, experiment_id: str, error: str) -> None:
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
    try:
        evaluate_experiment(settings, args[0])
    except Exception as error:
        log.exception("evaluation of %s failed", args[0])
        message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        _record_failure(settings, args[0], f"the evaluation failed: {message}")
        return EXIT_FAILURE_RECORDED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
