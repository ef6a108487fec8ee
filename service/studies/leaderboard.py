"""One row of a leaderboard per run, for a study's trials and for any compared experiments.

Pure functions of an experiment and its history; ranking is by the study's objective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.domain import EpochRecord, Experiment, ObjectiveMetric, Status, Study, TrialHead
from service.studies.objective import best, maximises

DEFAULT_THRESHOLD = 0.9


@dataclass(frozen=True)
class LeaderboardRow:
    experiment_id: str
    name: str
    label: str
    status: Status
    varied: dict[str, Any]
    objective: float | None
    best_val_accuracy: float | None
    best_epoch: int | None
    test_accuracy: float | None
    epochs_to_threshold: int | None
    seconds_per_epoch: float | None
    final_gap: float | None
    epochs_done: int
    error: str | None


def leaderboard_row(
    experiment: Experiment | TrialHead,
    history: list[EpochRecord],
    *,
    varied: dict[str, Any],
    label: str,
    objective: ObjectiveMetric,
    threshold: float = DEFAULT_THRESHOLD,
) -> LeaderboardRow:
    best_val = best(history, "val_accuracy")
    best_objective = best(history, objective)
    reached = [
        r.epoch for r in history if r.val_accuracy is not None and r.val_accuracy >= threshold
    ]
    last = history[-1] if history else None
    gap = (
        last.accuracy - last.val_accuracy
        if last is not None and last.accuracy is not None and last.val_accuracy is not None
        else None
    )
    return LeaderboardRow(
        experiment_id=experiment.id,
        name=experiment.name,
        label=label,
        status=experiment.status,
        varied=varied,
        objective=best_objective[0] if best_objective else None,
        best_val_accuracy=best_val[0] if best_val else None,
        best_epoch=best_val[1] if best_val else None,
        test_accuracy=experiment.test_accuracy,
        epochs_to_threshold=min(reached, default=None),
        seconds_per_epoch=sum(r.seconds for r in history) / len(history) if history else None,
        final_gap=gap,
        epochs_done=len(history),
        error=experiment.error,
    )


def ranked(rows: list[LeaderboardRow], objective: ObjectiveMetric) -> list[LeaderboardRow]:
    """Best objective first; runs without a value yet last, in their given order."""
    sign = -1.0 if maximises(objective) else 1.0
    return sorted(rows, key=lambda r: (r.objective is None, sign * (r.objective or 0.0)))


@dataclass(frozen=True)
class StudyReport:
    """A study, its trials counted by status, and its leaderboard (best objective first)."""

    study: Study
    progress: dict[str, int]
    leaderboard: list[LeaderboardRow]
