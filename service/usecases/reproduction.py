"""Reruns: submit an experiment's spec again, and say whether the rerun reproduced its history.

The same spec, seed and library versions on the same machine give a bit-identical history, so
a rerun compares exactly: any difference is real, and the versions (or a resumed attempt,
which reshuffles the epochs after its checkpoint) are what usually explains it.
"""

from __future__ import annotations

import math

from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import repository
from service.db.session import Database
from service.domain import (
    EpochRecord,
    Experiment,
    ExperimentDraft,
    FirstDifference,
    Reproduction,
    Status,
)
from service.errors import ExperimentNotFound, SpecRejected
from service.jobs.queue import JobQueue
from service.spec.experiment import ExperimentSpec
from service.usecases.submission import submit_experiment

COMPARED_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


NAME_LENGTH = 200  # ExperimentCreate.name's max_length


def rerun_experiment(
    *, experiment_id: str, settings: Settings, db: Database, queue: JobQueue, client_id: str
) -> Experiment:
    """Submit the experiment's stored spec again, under today's limits, as a new experiment."""
    with db.scope() as session:
        original = repository.get_experiment(session, experiment_id)
        number = repository.count_reruns(session, experiment_id) + 1
    # Numbered, so that lists and pickers tell a rerun from its original and from each other.
    suffix = f" (rerun {number})"
    try:
        spec = ExperimentSpec.model_validate(original.spec)
    except ValidationError as error:
        raise SpecRejected(
            f"experiment {experiment_id}'s spec is no longer accepted ({error.error_count()} "
            "problems); submit a corrected copy with POST /experiments",
            details=error.errors(include_url=False, include_context=False),
        ) from None
    name = original.name[: NAME_LENGTH - len(suffix)] + suffix
    # A rerun belongs where its original does: a class's or a question's tag list.
    draft = ExperimentDraft(name, original.description, spec, original.tags)
    return submit_experiment(
        draft=draft,
        settings=settings,
        db=db,
        queue=queue,
        client_id=client_id,
        rerun_of=original.id,
    ).experiment


def reproduction_of(session: Session, rerun: Experiment) -> Reproduction | None:
    """How a rerun compares with its original; None for an experiment that is not a rerun."""
    if rerun.rerun_of is None:
        return None
    try:
        original = repository.get_experiment(session, rerun.rerun_of)
    except ExperimentNotFound:
        return Reproduction(None, f"the original experiment {rerun.rerun_of} was deleted")
    versions_differ = _versions_differ(original.versions, rerun.versions)
    waiting = _not_comparable(original, "original") or _not_comparable(rerun, "rerun")
    if waiting:
        return Reproduction(
            None, waiting, versions_differ=versions_differ, original_versions=original.versions
        )
    _, original_history = repository.history(session, original.id)
    _, rerun_history = repository.history(session, rerun.id)
    difference = first_difference(original_history, rerun_history)
    if difference is None:
        explanation = f"every epoch's {', '.join(COMPARED_METRICS)} are identical"
    else:
        explanation = _explain(session, original, rerun, difference, versions_differ)
    return Reproduction(
        reproduced=difference is None,
        explanation=explanation,
        first_difference=difference,
        versions_differ=versions_differ,
        original_versions=original.versions,
    )


def first_difference(
    original: list[EpochRecord], rerun: list[EpochRecord]
) -> FirstDifference | None:
    """The first epoch and metric that differ (exactly: NaN equals NaN, None equals None)."""
    for before, after in zip(original, rerun, strict=False):
        for metric in COMPARED_METRICS:
            old, new = getattr(before, metric), getattr(after, metric)
            if not _same(old, new):
                return FirstDifference(before.epoch, metric, _finite(old), _finite(new))
    if len(original) != len(rerun):
        epoch = min(len(original), len(rerun)) + 1
        return FirstDifference(epoch, "missing", None, None)
    return None


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _not_comparable(experiment: Experiment, role: str) -> str | None:
    if not experiment.status.is_finished:
        return f"the {role} is {experiment.status.value}; compared once both have finished"
    if experiment.status is Status.CANCELLED:
        return f"the {role} was cancelled, so its history is incomplete and cannot be compared"
    return None


def _versions_differ(original: dict[str, str], rerun: dict[str, str]) -> bool | None:
    """Compared on the libraries both recorded; None when either has not trained yet."""
    shared = original.keys() & rerun.keys()
    if not shared:
        return None
    return any(original[name] != rerun[name] for name in shared)


def _explain(
    session: Session,
    original: Experiment,
    rerun: Experiment,
    difference: FirstDifference,
    versions_differ: bool | None,
) -> str:
    if difference.metric == "missing":
        where = f"the original has {original.epochs_done} epochs and the rerun {rerun.epochs_done}"
    else:
        where = f"epoch {difference.epoch}'s {difference.metric} differs"
    if versions_differ:
        changed = ", ".join(
            f"{name} {original.versions[name]} vs {rerun.versions[name]}"
            for name in sorted(original.versions.keys() & rerun.versions.keys())
            if original.versions[name] != rerun.versions[name]
        )
        return f"{where}; the versions differ ({changed}), which explains it"
    resumed = [
        role
        for role, experiment in (("original", original), ("rerun", rerun))
        if any(attempt.start_epoch > 0 for attempt in repository.attempts(session, experiment.id))
    ]
    if resumed:
        return (
            f"{where}; the {' and the '.join(resumed)} resumed from a checkpoint after a lost "
            "attempt, which reshuffles the epochs that follow"
        )
    return f"{where}, with the same versions: the machine (CPU or GPU) or the data differ"
