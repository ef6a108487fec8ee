"""The training process: attempts of experiments, one at a time, in a spawned interpreter.

`python -m service.worker.training <experiment_id> <attempt>` trains one attempt and exits;
the supervisor starts `python -m service.worker.training --serve`, a warm process that trains
the attempts its slot sends it, one after another (service/worker/host.py). Either is spawned,
never forked from a process that has loaded TensorFlow (such a child hangs in `fit`). Every write
names its attempt, so a process whose lease was taken away writes nothing: database writes are
fenced by the attempt number, and store writes go to the attempt's own folder and are published
(`last.json`) only while the database says the attempt still holds the lease.

Only the user's fault (a spec Keras refuses, unusable data, divergence) ends the experiment
here. A database write that fails is tried again for up to a lease; an infrastructure error
that persists (database, store, network) exits with EXIT_INFRASTRUCTURE and writes nothing, so
the supervisor requeues the job; an unreadable checkpoint is skipped for the previous good one,
or a fresh start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from service import logs
from service.config import Settings
from service.db import insight, leases
from service.db.session import Database
from service.domain import EpochRecord, Status
from service.errors import ServiceError, TrainingFailed
from service.insight.layers import LayerStats
from service.spec.experiment import ExperimentSpec
from service.storage import (
    ModelStore,
    checkpoint_attempts,
    checkpoint_key,
    checkpoint_meta_key,
    checkpoint_prefix,
    model_key,
    store_from_settings,
)
from service.usecases.pruning import prune_reason
from service.worker.job_signals import JobSignals, listen
from service.worker.lifeline import obey_supervisor_only, watch_parent
from service.worker.priority import lower_priority
from service.worker.quiet import QuietStderr

if TYPE_CHECKING:  # TensorFlow loads in the training process only, when it trains
    from service.ml.data import Split
    from service.ml.train import Resume, TrainingResult

log = logging.getLogger("service.training")

EXIT_OK = 0
EXIT_LOST_LEASE = 3
# Stopped after a finished epoch because its worker shuts down: requeue, the attempt is free.
EXIT_DRAINED = 4
# The database, the store or the network failed: requeue (EX_TEMPFAIL), nothing was written.
EXIT_INFRASTRUCTURE = 75
# A failed database write is tried again after this, doubling up to HEARTBEAT_SECONDS.
RETRY_FIRST_SECONDS = 0.25
T = TypeVar("T")

# What a checkpoint that cannot be used raises while it is read: skip it, never fail the job.
_UNREADABLE_CHECKPOINT = (FileNotFoundError, ValueError, KeyError, TypeError, zipfile.BadZipFile)
# Modules whose exceptions are the network's or a remote store's fault, not the user's.
_INFRASTRUCTURE_MODULES = ("botocore", "aiobotocore", "s3fs", "aiohttp", "urllib3", "requests")


def is_infrastructure_error(error: BaseException) -> bool:
    """Whether `error` is the infrastructure's fault (worth a retry), not the user's."""
    if isinstance(error, SQLAlchemyError | OSError):
        return True
    return any(type(error).__module__.startswith(name) for name in _INFRASTRUCTURE_MODULES)


class TrainingContext:
    """One attempt as its training process sees it: the trainer's hooks (checkpoint, then
    record, each epoch; stop on request), the checkpoint it resumes from, its local files."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        store: ModelStore,
        experiment_id: str,
        attempt: int,
        signals: JobSignals | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.experiment_id = experiment_id
        self.attempt = attempt
        signals = signals or JobSignals()
        self.cancel = signals.cancel
        self.drain = signals.drain
        self.lost = False
        self.pruned: str | None = None
        self.epochs = 0
        """How many epochs the spec asks for (known once the spec is read)."""
        self.started = time.monotonic()
        self._published: str | None = None
        self.local_dir = attempt_dir(settings.work_dir, experiment_id, attempt)
        self.local_dir.mkdir(parents=True, exist_ok=True)
        self.layer_stats: dict[int, list[LayerStats]] = {}

    # Trainer hooks -------------------------------------------------------------------------
    def stop_requested(self) -> bool:
        return self.cancel.is_set()

    def layers_measured(self, epoch: int, layers: list[LayerStats]) -> None:
        self.layer_stats[epoch] = layers  # written with the epoch's row, under its fence

    def epoch_finished(self, model: Any, record: EpochRecord, history: list[EpochRecord]) -> bool:
        # Checkpoint first: if we die before the row is written, the next attempt restores the
        # row from the checkpoint's history; the other order could leave a gap.
        if not self._checkpoint(model, history):
            self.lost = True
            return False
        layers = self.layer_stats.pop(record.epoch, None)
        pulse = self.transaction(partial(self._record_epoch, record=record, layers=layers))
        log.info("experiment %s %s", self.experiment_id, epoch_line(record, self.epochs))
        if not pulse.alive:
            self.lost = True
            return False
        if pulse.cancel_requested:
            self.cancel.set()
            return False
        # Draining: this epoch is checkpointed and recorded; stop before the next one.
        if self.drain.is_set():
            return False
        self.pruned = prune_reason(self.db, self.experiment_id, history)
        return self.pruned is None

    # The database -------------------------------------------------------------------------
    def _record_epoch(
        self, session: Session, *, record: EpochRecord, layers: list[LayerStats] | None
    ) -> leases.Pulse:
        """The epoch's row and its layer health, under the attempt's fence, in one transaction."""
        pulse = leases.record_epoch(
            session,
            experiment_id=self.experiment_id,
            attempt=self.attempt,
            record=record,
            lease_seconds=self.settings.lease_seconds,
        )
        if pulse.alive and layers is not None:
            insight.record_layer_stats(
                session,
                experiment_id=self.experiment_id,
                attempt=self.attempt,
                epoch=record.epoch,
                layers=layers,
            )
        return pulse

    def transaction(self, write: Callable[[Session], T]) -> T:
        """`write` in one transaction, run again after a database error for up to a lease: a
        blip costs this training nothing (every write here is fenced, so it can be repeated),
        and if the outage lasts, the supervisor stops this process before the lease expires."""
        deadline = time.monotonic() + self.settings.lease_seconds
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                with self.db.scope() as session:
                    return write(session)
            except (OperationalError, InterfaceError) as error:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("database error (%s); retrying in %.2f s", type(error).__name__, delay)
                time.sleep(delay)
                delay = min(delay * 2, self.settings.heartbeat_seconds)

    # Checkpoints ---------------------------------------------------------------------------
    def _checkpoint(self, model: Any, history: list[EpochRecord]) -> bool:
        """Upload the model to this attempt's folder, then publish it (`last.json`) under the
        fence: a crash between leaves the old pair, a stale attempt publishes nothing.
        False when the attempt lost its lease."""
        epoch = len(history)
        local = self.local_dir / "checkpoint.keras"
        model.save(local)
        key = checkpoint_key(self.experiment_id, self.attempt, epoch)
        self.store.put_file(local, key)
        meta = {
            "attempt": self.attempt,
            "model": key,
            "history": [record.__dict__ for record in history],
        }

        def publish(session: Session) -> bool:
            # The fence holds the row's lock until this transaction commits: no sweep or newer
            # claim can come between the check and the publication.
            if not leases.holds(session, experiment_id=self.experiment_id, attempt=self.attempt):
                return False
            self.store.write_json(checkpoint_meta_key(self.experiment_id, self.attempt), meta)
            return True

        if not self.transaction(publish):
            return False
        if self._published is not None:
            # Only ever this attempt's own previous file, once `last.json` names the new one.
            self.store.delete_prefix(self._published)
        self._published = key
        return True

    def restore(self) -> Resume | None:
        """The newest published checkpoint that can be read (attempts newest first); None when
        there is none. An unreadable one is skipped: the previous good one, or a fresh start."""
        for attempt in checkpoint_attempts(self.store, self.experiment_id):
            meta_key = checkpoint_meta_key(self.experiment_id, attempt)
            try:
                return self._read_checkpoint(meta_key)
            except _UNREADABLE_CHECKPOINT as error:
                log.warning(
                    "experiment %s: skipping the unreadable checkpoint of attempt %s (%s: %s)",
                    self.experiment_id,
                    attempt,
                    type(error).__name__,
                    error,
                )
        return None

    def _read_checkpoint(self, meta_key: str) -> Resume:
        import keras

        from service.ml.train import Resume

        meta = self.store.read_json(meta_key)
        history = [EpochRecord(**record) for record in meta["history"]]
        local = self.store.get_file(meta["model"], self.local_dir / "restored.keras")
        return Resume(model=keras.models.load_model(local), history=history)

    def cleanup(self, *, experiment_finished: bool = False) -> None:
        remove_local_files(self.local_dir, experiment_finished=experiment_finished)


def _metric(name: str, value: float | None) -> str:
    return f" {name} {value:.4f}" if value is not None else ""


def epoch_line(record: EpochRecord, epochs: int) -> str:
    """`epoch 3/10 loss 0.4100 acc 0.8700 val_loss 0.3800 val_acc 0.8900 1.9 s`."""
    return (
        f"epoch {record.epoch}/{epochs}"
        + _metric("loss", record.loss)
        + _metric("acc", record.accuracy)
        + _metric("val_loss", record.val_loss)
        + _metric("val_acc", record.val_accuracy)
        + f" {record.seconds:.1f} s"
    )


def attempt_dir(work_dir: str | Path, experiment_id: str, attempt: int) -> Path:
    """Where one attempt keeps its local files: WORK_DIR/<experiment id>/attempt-<n>."""
    return Path(work_dir) / experiment_id / f"attempt-{attempt}"


def remove_local_files(local_dir: Path, *, experiment_finished: bool = False) -> None:
    """Remove an ended attempt's local files; every attempt's once the experiment finished.

    While the experiment may still run, only this attempt's folder goes: workers on one machine
    may share a WORK_DIR, and the attempt that took over a lost lease may be training from the
    same experiment folder. Once this attempt has finished the experiment no attempt runs again,
    so the folders that killed attempts could not remove go too.
    """
    if experiment_finished:
        shutil.rmtree(local_dir.parent, ignore_errors=True)
        return
    shutil.rmtree(local_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # not empty: another attempt still works in it
        local_dir.parent.rmdir()


def configure_tensorflow(settings: Settings) -> None:
    import tensorflow as tf

    threads = settings.training_threads or max(1, (os.cpu_count() or 1) // settings.worker_slots)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(threads, 2)))
    _quiet_tensorflow()


def _quiet_tensorflow() -> None:
    """A teacher watching the log wants our lines, not TensorFlow's start-up chatter."""
    import absl.logging
    import keras

    absl.logging.set_verbosity(absl.logging.ERROR)
    keras.utils.disable_interactive_logging()  # no progress bars, whatever `verbose` says


def run(
    experiment_id: str, attempt: int, settings: Settings, *, signals: JobSignals | None = None
) -> int:
    """Train one attempt; the exit code that says how it ended (EXIT_OK: it wrote the
    experiment's outcome). A warm process passes the `signals` it already listens to."""
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
        code = _train(context, settings)
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


def _train(context: TrainingContext, settings: Settings) -> int:
    """Take up where the last attempt stopped, fit with a checkpoint per epoch, then finish."""
    start = _start_from_checkpoint(context, settings)
    if start is None:
        return EXIT_LOST_LEASE
    result = _fit(context, start)
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
    resume = context.restore()
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


def _fit(context: TrainingContext, start: _Start) -> TrainingResult:
    """Train the remaining epochs; the context checkpoints and records each one as it ends."""
    from service.ml.train import train

    return train(
        start.spec, start.split, hooks=context, resume=start.resume, attempt=context.attempt
    )


def _finish(context: TrainingContext, result: TrainingResult) -> int:
    """Write the outcome: cancelled, failed (diverged or not evaluated), or succeeded."""
    from service.ml.train import check_finite

    if context.cancel.is_set():
        return _end(context, Status.CANCELLED, None)
    if context.pruned:
        return _end(context, Status.PRUNED, context.pruned)
    diverged = check_finite(result.history)
    if diverged or result.test_accuracy is None or result.test_loss is None:
        return _end(context, Status.FAILED, diverged or "training stopped before evaluation")
    local_model = context.local_dir / "model.keras"
    result.model.save(local_model)
    uri = context.store.put_file(local_model, model_key(context.experiment_id))
    owned = context.transaction(partial(_record_success, context=context, result=result, uri=uri))
    if owned:
        context.store.delete_prefix(checkpoint_prefix(context.experiment_id))
        _log_end(context, Status.SUCCEEDED, f"test accuracy {result.test_accuracy:.4f}")
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


USAGE = (
    "usage: python -m service.worker.training <experiment_id> <attempt>\n"
    "       python -m service.worker.training --serve <answers fd> (started by a worker slot)"
)


def main(argv: list[str] | None = None) -> int:
    obey_supervisor_only()
    watch_parent()
    settings = Settings()
    # Trainings yield the CPU to the API: reads and predictions stay quick while they run.
    lower_priority(settings.training_niceness)
    args = sys.argv[1:] if argv is None else argv
    # LOG_FORMAT and LOG_LEVEL as in the worker that started it; TF_CPP_MIN_LOG_LEVEL too.
    logs.configure(text_format=logs.role_format("training"))
    if args[:1] == ["--serve"] and len(args) >= 2 and args[1].isdigit():
        from service.worker.host import serve  # it runs this module's `run`, once per job

        return serve(settings, answers=int(args[1]))
    if len(args) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    return run(args[0], int(args[1]), settings)


if __name__ == "__main__":
    with QuietStderr():
        code = main()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    # Everything is written and closed by now. Skip the interpreter's teardown, which takes
    # TensorFlow a second or two after a fit and would keep the worker's slot busy meanwhile.
    os._exit(code)
