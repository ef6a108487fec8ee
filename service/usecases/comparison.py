"""Comparing any experiments: what differs in their specs, the per-run table, the curves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from service.db import repository
from service.domain import EpochRecord, Experiment
from service.errors import InvalidInput
from service.studies.comparison import aligned, differences, layer_changes, net_summary
from service.studies.leaderboard import LeaderboardRow, leaderboard_row
from service.studies.objective import DEFAULT_OBJECTIVE

MAX_COMPARED = 24  # what a chart's legend still fits


def split_ids(ids: list[str]) -> list[str]:
    """`ids=a,b` and `ids=a&ids=b` alike: each id once, in the order given."""
    return list(
        dict.fromkeys(part.strip() for value in ids for part in value.split(",") if part.strip())
    )


@dataclass(frozen=True)
class RunLayers:
    """A run's net in brief, and its layers against the first run's (none for the first)."""

    net: str
    changes: list[str]


@dataclass(frozen=True)
class Comparison:
    experiments: list[Experiment]
    histories: list[list[EpochRecord]]
    differences: dict[str, list[Any]]
    """The spec fields outside `layers` that differ; the layers are compared in `layers`."""
    layers: list[RunLayers]
    runs: list[LeaderboardRow]
    epochs: list[int]
    series: list[dict[str, list[float | None]]]


def compared_layers(specs: list[dict[str, Any]]) -> list[RunLayers]:
    """Each spec's net, and its layers aligned against the first spec's."""
    first = specs[0]["layers"] if specs else []
    return [
        RunLayers(
            net_summary(spec["layers"]), [] if index == 0 else layer_changes(first, spec["layers"])
        )
        for index, spec in enumerate(specs)
    ]


def compare(session: Session, ids: list[str], *, threshold: float, at_least: int = 2) -> Comparison:
    """The experiments in `ids` order; a 404 names the first unknown one."""
    if not at_least <= len(ids) <= MAX_COMPARED:
        raise InvalidInput(f"compare {at_least} to {MAX_COMPARED} experiments; got {len(ids)} ids")
    experiments = [repository.get_experiment(session, experiment_id) for experiment_id in ids]
    found = repository.histories(session, ids)
    histories = [found[experiment_id] for experiment_id in ids]
    specs = [experiment.spec for experiment in experiments]
    diff = differences([{k: v for k, v in spec.items() if k != "layers"} for spec in specs])
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
    return Comparison(experiments, histories, diff, compared_layers(specs), runs, epochs, series)
