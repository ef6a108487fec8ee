"""One attempt of one experiment, trained in the training process: the job's flow.

Take up where the last attempt stopped (the newest readable checkpoint, the stored history made
to match it), fit with a checkpoint and a fenced row per epoch, then write the outcome. Every
write names its attempt, so a process whose lease was taken away writes nothing.

Only the user's fault (a spec Keras refuses, unusable data, divergence) ends the experiment
here. An infrastructure error that persists (database, store, network) exits with
EXIT_INFRASTRUCTURE and writes nothing, so the supervisor requeues the job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import insight, leases
from service.db.session import Database
from service.domain import Status
from service.errors import ServiceError, TrainingFailed
from service.spec.experiment import ExperimentSpec
from service.storage import checkpoint_prefix, model_key, store_from_settings
from service.worker.context import TrainingContext, is_infrastructure_error
from service.worker.job_signals import JobSignals, listen
from service.worker.protocol import (
    EXIT_DRAINED,
    EXIT_INFRASTRUCTURE,
    EXIT_LOST_LEASE,
    EXIT_OK,
)
from service.worker.tensorflow_setup import configure_tensorflow

if TYPE_CHECKING:  # TensorFlow loads in the training process only, when it trains
    from service.ml.data import Split
    from service.ml.traced import TracedModels
    from service.ml.train import Resume, TrainingResult

log = logging.getLogger("service.training")


def run(
    experiment_id: str,
    attempt: int,
    settings: Settings,
    *,
    signals: JobSignals | None = None,
    traced: TracedModels | None = None,
) -> int:
    """Train one attempt; the exit code that says how it ended (EXIT_OK: it wrote the
    experiment's outcome). A warm process passes the `signals` it already listens to, and the
    models it kept from its earlier jobs (service/ml/traced.py)."""
    if signals is None:
        signals = JobSignals()
        listen(signals)
    db = Database.from_settings(settings)
    try:
        store = store_from_settings(settings)
    except Exception as error:
        if not is_infrastructure_error(error):
            raise
        log.exception("training %s: the model store is unavailable", experiment_id)
        db.dispose()
        return EXIT_INFRASTRUCTURE
    context = TrainingContext(
        settings=settings,
        db=db,
        store=store,
        experiment_id=experiment_id,
        attempt=attempt,
        signals=signals,
    )
    code = EXIT_LOST_LEASE
    try:
        code = _train(context, settings, traced)
    except (ServiceError, TrainingFailed) as error:
        message = getattr(error, "message", str(error))
        code = _end_or_retry(context, message)
    except Exception as error:
        if is_infrastructure_error(error):
            log.exception("training %s: infrastructure error; exit to be requeued", experiment_id)
            code = EXIT_INFRASTRUCTURE
        else:
            log.exception("training %s crashed", experiment_id)
            code = _end_or_retry(context, f"training crashed: {type(error).__name__}: {error}")
    finally:
        # EXIT_OK: this attempt wrote the experiment's outcome.
        context.cleanup(experiment_finished=code == EXIT_OK)
        db.dispose()
    return code


def _train(context: TrainingContext, settings: Settings, traced: TracedModels | None) -> int:
    """Take up where the last attempt stopped, fit with a checkpoint per epoch, then finish."""
    with context.timed("start"):
        start = _start_from_checkpoint(context, settings)
    if start is None:
        return EXIT_LOST_LEASE
    result = _fit(context, start, traced, xla=settings.training_path == "xla")
    if context.lost:
        return EXIT_LOST_LEASE
    if context.drain.is_set() and result.stopped and not context.cancel.is_set():
        return EXIT_DRAINED  # its supervisor says so, once it has released the claim
    return _finish(context, result)


@dataclass(frozen=True)
class _Start:
    """What fitting needs: the spec, the data, and the checkpoint to resume from, if any."""

    spec: ExperimentSpec
    split: Split
    resume: Resume | None


def _start_from_checkpoint(context: TrainingContext, settings: Settings) -> _Start | None:
    """Restore the newest checkpoint and make the stored history match it; None if not ours."""
    from service.ml import data as mnist

    spec_json = context.transaction(
        partial(leases.spec_if_owned, experiment_id=context.experiment_id, attempt=context.attempt)
    )
    if spec_json is None:
        return None
    spec = ExperimentSpec.model_validate(spec_json)
    context.epochs = spec.fit.epochs
    # Before the data or the checkpoint's model start TensorFlow, which then fixes its threads
    # (a warm process did so before its first job: setting the same numbers again is allowed).
    configure_tensorflow(settings)
    split = mnist.split(
        mnist.load_mnist(settings.mnist_path),
        validation_size=spec.fit.validation_size,
        train_size=spec.fit.train_size,
    )
    resume = context.checkpoints.restore()
    owned = context.transaction(
        partial(
            leases.begin_epochs,
            experiment_id=context.experiment_id,
            attempt=context.attempt,
            start_epoch=resume.start_epoch if resume else 0,
            restored=resume.history if resume else [],
        )
    )
    return _Start(spec=spec, split=split, resume=resume) if owned else None


def _fit(
    context: TrainingContext, start: _Start, traced: TracedModels | None, *, xla: bool
) -> TrainingResult:
    """Train the remaining epochs; the context checkpoints and records each one as it ends."""
    from service.ml.train import train

    reused = traced.reused if traced is not None else 0
    result = train(
        start.spec,
        start.split,
        hooks=context,
        resume=start.resume,
        attempt=context.attempt,
        xla=xla,
        traced=traced,
    )
    context.seconds.update(result.seconds)
    context.reused_traces = traced is not None and traced.reused > reused
    return result


def _finish(context: TrainingContext, result: TrainingResult) -> int:
    """Write the outcome: cancelled, failed (diverged or not evaluated), or succeeded."""
    from service.ml.session import save_model
    from service.ml.train import check_finite

    if context.cancel.is_set():
        return _end(context, Status.CANCELLED, None)
    if context.pruned:
        return _end(context, Status.PRUNED, context.pruned)
    diverged = check_finite(result.history)
    if diverged or result.test_accuracy is None or result.test_loss is None:
        return _end(context, Status.FAILED, diverged or "training stopped before evaluation")
    with context.timed("save"):
        # The last checkpoint's file, where it holds the model as it is: the same numbers.
        local_model = context.checkpoints.unchanged_file(result.model)
        if local_model is None:
            local_model = context.local_dir / "model.keras"
            save_model(result.model, local_model)
        uri = context.store.put_file(local_model, model_key(context.experiment_id))
    with context.timed("writes"):
        owned = context.transaction(
            partial(_record_success, context=context, result=result, uri=uri)
        )
        if owned:
            context.store.delete_prefix(checkpoint_prefix(context.experiment_id))
    if owned:
        _log_end(context, Status.SUCCEEDED, f"test accuracy {result.test_accuracy:.4f}")
        _log_parts(context, result)
    return EXIT_OK if owned else EXIT_LOST_LEASE


def _record_success(
    session: Session, *, context: TrainingContext, result: TrainingResult, uri: str
) -> bool:
    """The outcome and the test-set evaluation, in one fenced transaction."""
    assert result.test_loss is not None
    assert result.test_accuracy is not None
    owned = leases.succeed(
        session,
        experiment_id=context.experiment_id,
        attempt=context.attempt,
        test_loss=result.test_loss,
        test_accuracy=result.test_accuracy,
        model_uri=uri,
        versions=result.versions,
    )
    if owned and result.evaluation is not None:
        insight.save_evaluation(
            session, experiment_id=context.experiment_id, evaluation=result.evaluation
        )
    return owned


def _log_end(context: TrainingContext, status: Status, outcome: str | None) -> None:
    log.info(
        "experiment %s %s%s after %.1f s",
        context.experiment_id,
        status.value,
        f": {outcome}" if outcome else "",
        time.monotonic() - context.started,
    )


def _log_parts(context: TrainingContext, result: TrainingResult) -> None:
    """Where the job's time went (bench/study.py reads this line): its parts overlap, as fit
    holds the epochs and their checkpoints and writes."""
    training = sum(record.seconds for record in result.history if record.attempt == context.attempt)
    log.info(
        "experiment %s took %.3f s in its process: %s; epochs %.3f s%s",
        context.experiment_id,
        time.monotonic() - context.started,
        ", ".join(f"{part} {seconds:.3f} s" for part, seconds in context.seconds.items()),
        training,
        " (reused the traced model of an earlier job)" if context.reused_traces else "",
    )


def _end_or_retry(context: TrainingContext, message: str) -> int:
    """Fail the experiment for the user's fault; if the database cannot take even that, exit to
    be requeued rather than leave the ending unwritten."""
    try:
        return _end(context, Status.FAILED, message)
    except SQLAlchemyError:
        log.exception("training %s: could not record its failure", context.experiment_id)
        return EXIT_INFRASTRUCTURE


def _end(context: TrainingContext, status: Status, error: str | None) -> int:
    owned = context.transaction(
        partial(
            leases.finish,
            experiment_id=context.experiment_id,
            attempt=context.attempt,
            status=status,
            error=error,
        )
    )
    if owned:
        _log_end(context, status, error)
    return EXIT_OK if owned else EXIT_LOST_LEASE
