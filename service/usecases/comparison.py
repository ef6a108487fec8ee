"""Comparing any experiments: what differs in their specs, the per-run table, the curves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from service.db import repository
from service.domain import EpochRecord, Experiment
from service.errors import InvalidInput
from service.studies.comparison import aligned, differences
from service.studies.leaderboard import LeaderboardRow, leaderboard_row
from service.studies.objective import DEFAULT_OBJECTIVE
from service.studies.space import describe

MAX_COMPARED = 24  # what a chart's legend still fits


def split_ids(ids: list[str]) -> list[str]:
    """`ids=a,b` and `ids=a&ids=b` alike: each id once, in the order given."""
    return list(
        dict.fromkeys(part.strip() for value in ids for part in value.split(",") if part.strip())
    )


@dataclass(frozen=True)
class Comparison:
    experiments: list[Experiment]
    histories: list[list[EpochRecord]]
    differences: dict[str, list[Any]]
    runs: list[LeaderboardRow]
    epochs: list[int]
    series: list[dict[str, list[float | None]]]

    def labels(self) -> list[str]:
        """Each run's name and what sets it apart: `adam-run: learning_rate=0.1`."""
        labels = []
        for index, experiment in enumerate(self.experiments):
            varied = describe({path: values[index] for path, values in self.differences.items()})
            labels.append(f"{experiment.name}: {varied}" if varied else experiment.name)
        return labels


def compare(session: Session, ids: list[str], *, threshold: float, at_least: int = 2) -> Comparison:
    """The experiments in `ids` order; a 404 names the first unknown one."""
    if not at_least <= len(ids) <= MAX_COMPARED:
        raise InvalidInput(f"compare {at_least} to {MAX_COMPARED} experiments; got {len(ids)} ids")
    experiments = [repository.get_experiment(session, experiment_id) for experiment_id in ids]
    found = repository.histories(session, ids)
    histories = [found[experiment_id] for experiment_id in ids]
    diff = differences([experiment.spec for experiment in experiments])
    runs = [
        leaderboard_row(
            experiment,
            history,
            varied={path: values[index] for path, values in diff.items()},
            label=experiment.name,
            objective=DEFAULT_OBJECTIVE,
            threshold=threshold,
        )
        for index, (experiment, history) in enumerate(zip(experiments, histories, strict=True))
    ]
    epochs, series = aligned(histories)
    return Comparison(experiments, histories, diff, runs, epochs, series)
