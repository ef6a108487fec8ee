"""Experiment reads and user-side writes; rows are turned into domain objects before leaving."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from service.db.models import (
    VERSION_COLUMNS,
    AttemptRow,
    EpochRow,
    ExperimentRow,
    ExperimentTagRow,
    ModelAliasRow,
    queued_experiment,
)
from service.domain import FINISHED, Attempt, EpochRecord, Experiment, JobTiming, Status, utcnow
from service.errors import ExperimentNotFound, NotCancellable, NotDeletable


def to_experiment(
    row: ExperimentRow,
    *,
    epochs_done: int = 0,
    aliases: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> Experiment:
    versions = {
        name: getattr(row, column)
        for name, column in VERSION_COLUMNS.items()
        if getattr(row, column)
    }
    return Experiment(
        id=row.id,
        name=row.name,
        description=row.description,
        spec=row.spec,
        summary=row.summary,
        status=Status(row.status),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        test_loss=row.test_loss,
        test_accuracy=row.test_accuracy,
        error=row.error,
        attempt=row.attempt,
        max_attempts=row.max_attempts,
        cancel_requested=row.cancel_requested,
        model_uri=row.model_uri,
        worker=row.lease_owner,
        versions=versions,
        spec_hash=row.spec_hash,
        seed=row.seed,
        rerun_of=row.rerun_of,
        epochs_done=epochs_done,
        aliases=tuple(sorted(aliases)),
        study_id=row.study_id,
        trial_params=row.trial_params,
        tags=tuple(tags),
        owner_id=row.owner_id,
        owner=row.owner_name,
        client_id=row.client_id,
    )


# An epoch's columns, read as plain values rather than EpochRow objects: a study's leaderboard or
# a page of the compact table reads 1,000-2,000 epochs, and building an ORM object (identity
# map, instance state) for each was most of such a read. In EpochRecord's field order.
EPOCH_COLUMNS = (
    EpochRow.epoch,
    EpochRow.loss,
    EpochRow.accuracy,
    EpochRow.val_loss,
    EpochRow.val_accuracy,
    EpochRow.seconds,
    EpochRow.attempt,
    EpochRow.learning_rate,
)


def to_epoch(values: Sequence[Any]) -> EpochRecord:
    """An epoch from the values of EPOCH_COLUMNS, in their order (unpacked: reading a row's
    values by name took four times as long); a NULL loss is the NaN it stood for."""
    epoch, loss, *rest = values
    return EpochRecord(epoch, math.nan if loss is None else loss, *rest)


def create_experiment(
    session: Session,
    *,
    name: str,
    description: str | None,
    spec: dict[str, Any],
    summary: dict[str, Any],
    client_id: str,
    max_attempts: int,
    spec_hash: str | None = None,
    seed: int | None = None,
    rerun_of: str | None = None,
    tags: Sequence[str] = (),
) -> Experiment:
    row = ExperimentRow(
        **queued_experiment(
            name=name,
            description=description,
            spec=spec,
            summary=summary,
            client_id=client_id,
            max_attempts=max_attempts,
            spec_hash=spec_hash,
            seed=seed,
            rerun_of=rerun_of,
        )
    )
    session.add(row)
    session.flush()
    session.add_all(
        ExperimentTagRow(experiment_id=row.id, tag=tag, created_at=row.created_at) for tag in tags
    )
    return to_experiment(row, tags=sorted(tags))


def _epochs_done(session: Session, experiment_id: str) -> int:
    query = select(func.count()).where(EpochRow.experiment_id == experiment_id)
    return session.scalar(query) or 0


def _aliases(session: Session, experiment_ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if not experiment_ids:
        return found
    query = select(ModelAliasRow.alias, ModelAliasRow.experiment_id).where(
        ModelAliasRow.experiment_id.in_(experiment_ids)
    )
    for alias, experiment_id in session.execute(query):
        found.setdefault(experiment_id, []).append(alias)
    return found


def tags_of(session: Session, experiment_ids: Sequence[str]) -> dict[str, list[str]]:
    """The tags of each of `experiment_ids` that has any, in name order."""
    found: dict[str, list[str]] = {}
    if not experiment_ids:
        return found
    query = (
        select(ExperimentTagRow.experiment_id, ExperimentTagRow.tag)
        .where(ExperimentTagRow.experiment_id.in_(experiment_ids))
        .order_by(ExperimentTagRow.tag)
    )
    for experiment_id, tag in session.execute(query):
        found.setdefault(experiment_id, []).append(tag)
    return found


def _row(session: Session, experiment_id: str, *, fresh: bool = False) -> ExperimentRow:
    row = session.get(ExperimentRow, experiment_id, populate_existing=fresh)
    if row is None:
        raise ExperimentNotFound(
            f"no experiment with id {experiment_id!r}; list them with GET /experiments"
        )
    return row


def get_experiment(session: Session, experiment_id: str) -> Experiment:
    row = _row(session, experiment_id)
    return to_experiment(
        row,
        epochs_done=_epochs_done(session, experiment_id),
        aliases=_aliases(session, [experiment_id]).get(experiment_id, []),
        tags=tags_of(session, [experiment_id]).get(experiment_id, []),
    )


def to_experiments(session: Session, rows: Sequence[ExperimentRow]) -> list[Experiment]:
    """Rows of a list as experiments, with their epoch counts, aliases and tags (three
    queries for the whole list, not three a row)."""
    ids = [row.id for row in rows]
    epoch_counts = dict(
        session.execute(
            select(EpochRow.experiment_id, func.count())
            .where(EpochRow.experiment_id.in_(ids))
            .group_by(EpochRow.experiment_id)
        ).all()
    )
    aliases, tags = _aliases(session, ids), tags_of(session, ids)
    return [
        to_experiment(
            row,
            epochs_done=epoch_counts.get(row.id, 0),
            aliases=aliases.get(row.id, []),
            tags=tags.get(row.id, []),
        )
        for row in rows
    ]


def history(session: Session, experiment_id: str) -> tuple[Status, list[EpochRecord]]:
    row = _row(session, experiment_id)
    epochs = session.execute(
        select(*EPOCH_COLUMNS)
        .where(EpochRow.experiment_id == experiment_id)
        .order_by(EpochRow.epoch)
    )
    return Status(row.status), [to_epoch(epoch) for epoch in epochs.tuples()]


def histories(session: Session, experiment_ids: Sequence[str]) -> dict[str, list[EpochRecord]]:
    """The epochs of several experiments in one query, each list in epoch order."""
    found: dict[str, list[EpochRecord]] = {experiment_id: [] for experiment_id in experiment_ids}
    if not experiment_ids:
        return found
    rows = session.execute(
        select(EpochRow.experiment_id, *EPOCH_COLUMNS)
        .where(EpochRow.experiment_id.in_(experiment_ids))
        .order_by(EpochRow.experiment_id, EpochRow.epoch)
    )
    for experiment_id, *values in rows.tuples():
        found[experiment_id].append(to_epoch(values))
    return found


def epoch_rows(session: Session, ids: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
    """The (epoch, loss, accuracy, val_loss, val_accuracy, seconds) of each epoch of the
    experiments `ids`, each list in epoch order: what the compact table summarises, as the
    database has them (a NaN loss is NULL here, None: the table leaves out NaN and None alike)."""
    found: dict[str, list[tuple[Any, ...]]] = {experiment_id: [] for experiment_id in ids}
    if not ids:
        return found
    rows = session.execute(
        select(EpochRow.experiment_id, *EPOCH_COLUMNS[:6])
        .where(EpochRow.experiment_id.in_(ids))
        .order_by(EpochRow.experiment_id, EpochRow.epoch)
    )
    for experiment_id, *values in rows.tuples():
        found[experiment_id].append(tuple(values))
    return found


def active_experiments(session: Session) -> list[Experiment]:
    """Every queued or running experiment, oldest first: the order the queue serves them."""
    rows = session.scalars(
        select(ExperimentRow).where(ExperimentRow.status.in_([Status.QUEUED, Status.RUNNING]))
    ).all()
    # Sorted here, not by the database: to skip sorting these few rows, SQLite would walk the
    # (created_at, id) index over every experiment ever made (75 ms at 100,000).
    rows = sorted(rows, key=lambda row: (row.created_at, row.id))
    return [to_experiment(row) for row in rows]


def recent_epoch_seconds(session: Session, *, limit: int = 50) -> list[float]:
    """How long the most recently recorded epochs took, of any experiment."""
    query = select(EpochRow.seconds).order_by(EpochRow.recorded_at.desc()).limit(limit)
    return list(session.scalars(query))


def count_reruns(session: Session, experiment_id: str) -> int:
    """How many experiments were submitted as reruns of this one."""
    query = select(func.count()).where(ExperimentRow.rerun_of == experiment_id)
    return int(session.scalar(query) or 0)


def recent_job_timings(session: Session, *, limit: int = 20) -> list[JobTiming]:
    """The most recently finished trainings that succeeded at their first attempt: how long
    each took from its claim to its end, and how much of it its epochs took."""
    jobs = session.execute(
        select(ExperimentRow.id, ExperimentRow.started_at, ExperimentRow.finished_at)
        .where(
            ExperimentRow.status == Status.SUCCEEDED,
            ExperimentRow.attempt == 1,
            ExperimentRow.started_at.is_not(None),
            ExperimentRow.finished_at.is_not(None),
        )
        .order_by(ExperimentRow.finished_at.desc())
        .limit(limit)
    ).all()
    epochs: dict[str, list[tuple[float, Any]]] = {}
    for experiment_id, seconds, recorded_at in session.execute(
        select(EpochRow.experiment_id, EpochRow.seconds, EpochRow.recorded_at).where(
            EpochRow.experiment_id.in_([job.id for job in jobs])
        )
    ):
        epochs.setdefault(experiment_id, []).append((seconds, recorded_at))
    timings = []
    for job in jobs:
        recorded = epochs.get(job.id)
        if not recorded:
            continue
        last = max(recorded_at for _, recorded_at in recorded)
        timings.append(
            JobTiming(
                seconds=(job.finished_at - job.started_at).total_seconds(),
                epoch_seconds=sum(seconds for seconds, _ in recorded),
                after_last_epoch=max((job.finished_at - last).total_seconds(), 0.0),
            )
        )
    return timings


def attempts(session: Session, experiment_id: str) -> list[Attempt]:
    _row(session, experiment_id)
    rows = session.scalars(
        select(AttemptRow)
        .where(AttemptRow.experiment_id == experiment_id)
        .order_by(AttemptRow.number)
    ).all()
    return [
        Attempt(
            number=row.number,
            worker=row.worker,
            start_epoch=row.start_epoch,
            started_at=row.started_at,
            ended_at=row.ended_at,
            outcome=row.outcome,
        )
        for row in rows
    ]


def request_cancel(session: Session, experiment_id: str) -> Experiment:
    """Cancel a queued experiment at once; flag a running one for its worker to stop.

    The flag goes first, in one statement that takes the row's lock: a claim refuses a flagged
    row, so no worker can take the experiment between the flag and the cancel, and a worker
    that took it just before sees the flag at its next heartbeat.
    """
    session.execute(
        update(ExperimentRow)
        .where(
            ExperimentRow.id == experiment_id,
            ExperimentRow.status.in_([Status.QUEUED, Status.RUNNING]),
        )
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    row = _row(session, experiment_id, fresh=True)
    status = Status(row.status)
    if status.is_finished:
        raise NotCancellable(
            f"experiment {experiment_id} already {status.value}; only queued or running "
            "experiments can be cancelled"
        )
    if status is Status.QUEUED:
        row.status = Status.CANCELLED
        row.finished_at = utcnow()
        row.error = "cancelled before it started"
    session.flush()
    return get_experiment(session, experiment_id)


def delete_experiment(session: Session, experiment_id: str) -> Experiment:
    row = _row(session, experiment_id)
    if Status(row.status) not in FINISHED:
        raise NotDeletable(
            f"experiment {experiment_id} is {row.status}; cancel it first "
            f"(POST /experiments/{experiment_id}/cancel), then delete it"
        )
    experiment = to_experiment(row)
    session.execute(delete(EpochRow).where(EpochRow.experiment_id == experiment_id))
    session.execute(delete(AttemptRow).where(AttemptRow.experiment_id == experiment_id))
    session.execute(delete(ModelAliasRow).where(ModelAliasRow.experiment_id == experiment_id))
    session.execute(delete(ExperimentTagRow).where(ExperimentTagRow.experiment_id == experiment_id))
    session.delete(row)
    return experiment
