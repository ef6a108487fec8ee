"""One attempt as its training process sees it: the trainer's hooks, fenced writes, local files.

Each epoch the context checkpoints, then records the epoch's row under the attempt's fence; it
stops the trainer when the supervisor asks (cancel, drain), the lease is lost, or a study prunes
the trial. A database write that fails is tried again for up to a lease (every write here is
fenced, so it can be repeated); if the outage lasts, the supervisor stops this process first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import insight, leases
from service.db.session import Database
from service.domain import EpochRecord
from service.insight.layers import LayerStats
from service.storage import ModelStore
from service.usecases.pruning import prune_reason
from service.worker.checkpoints import Checkpoints
from service.worker.job_signals import JobSignals
from service.worker.protocol import attempt_dir, remove_local_files
from service.worker.retry import RetryPolicy

log = logging.getLogger("service.training")

T = TypeVar("T")

# Modules whose exceptions are the network's or a remote store's fault, not the user's.
_INFRASTRUCTURE_MODULES = ("botocore", "aiobotocore", "s3fs", "aiohttp", "urllib3", "requests")


def is_infrastructure_error(error: BaseException) -> bool:
    """Whether `error` is the infrastructure's fault (worth a retry), not the user's."""
    if isinstance(error, SQLAlchemyError | OSError):
        return True
    return any(type(error).__module__.startswith(name) for name in _INFRASTRUCTURE_MODULES)


class TrainingContext:
    """The trainer's hooks (checkpoint, then record, each epoch; stop on request), the
    checkpoint it resumes from, its local files."""

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
        self.reused_traces = False
        """The job trained a model a warm process kept from an earlier one (traced.py)."""
        self.epochs = 0
        """How many epochs the spec asks for (known once the spec is read)."""
        self.started = time.monotonic()
        self.local_dir = attempt_dir(settings.work_dir, experiment_id, attempt)
        self.local_dir.mkdir(parents=True, exist_ok=True)
        self.layer_stats: dict[int, list[LayerStats]] = {}
        self.seconds: dict[str, float] = {}
        """Where the job's time went besides training, by part (`timed`)."""
        self.retries = RetryPolicy(max_seconds=settings.heartbeat_seconds)
        self.checkpoints = Checkpoints(
            store=store,
            experiment_id=experiment_id,
            attempt=attempt,
            local_dir=self.local_dir,
            transaction=self.transaction,
        )

    # Trainer hooks -------------------------------------------------------------------------
    def stop_requested(self) -> bool:
        return self.cancel.is_set()

    def layers_measured(self, epoch: int, layers: list[LayerStats]) -> None:
        self.layer_stats[epoch] = layers  # written with the epoch's row, under its fence

    def epoch_finished(self, model: Any, record: EpochRecord, history: list[EpochRecord]) -> bool:
        # Checkpoint first: if we die before the row is written, the next attempt restores the
        # row from the checkpoint's history; the other order could leave a gap.
        with self.timed("checkpoints"):
            saved = self.checkpoints.save(model, history)
        if not saved:
            self.lost = True
            return False
        layers = self.layer_stats.pop(record.epoch, None)
        with self.timed("epoch rows"):
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

    @contextmanager
    def timed(self, part: str) -> Iterator[None]:
        """Add the block's running time to `seconds[part]`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - started

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
        """`write` in one transaction, run again after a database error for up to a lease."""

        def once() -> T:
            with self.db.scope() as session:
                return write(session)

        return self.retries.call(
            once,
            retry_on=(OperationalError, InterfaceError),
            deadline=time.monotonic() + self.settings.lease_seconds,
            what="database write",
        )

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
