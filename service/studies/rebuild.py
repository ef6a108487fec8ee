"""Our trial rows as an in-memory Optuna study: built for one question, then thrown away.

The database is the only record of a study. Whenever a sampler is asked for the next trial or
a pruner for a verdict, the study is rebuilt here from what our rows say, so nothing can
disagree with them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from service.domain import EpochRecord, Experiment, ObjectiveMetric, Status
from service.studies.objective import best, per_epoch
from service.studies.space import Choice, IntRange, LogUniform, Params, Space, as_distribution

optuna.logging.set_verbosity(optuna.logging.WARNING)

_STATES = {
    Status.SUCCEEDED: TrialState.COMPLETE,
    Status.PRUNED: TrialState.PRUNED,
    Status.FAILED: TrialState.FAIL,
    Status.CANCELLED: TrialState.FAIL,
    Status.RUNNING: TrialState.RUNNING,
    Status.QUEUED: TrialState.RUNNING,
}


@dataclass(frozen=True)
class TrialRecord:
    """What our rows say about one trial, in the objective's terms (step = epoch, from 1)."""

    number: int
    status: Status
    params: Params
    intermediate: dict[int, float] = field(default_factory=dict)
    value: float | None = None
    """The trial's objective (its best value); None until it succeeded."""


def trial_records(
    trials: list[Experiment], histories: dict[str, list[EpochRecord]], objective: ObjectiveMetric
) -> list[TrialRecord]:
    """Trials in their order as a study sees them: the objective at each epoch, and its best
    value once the trial succeeded."""
    records = []
    for number, trial in enumerate(trials):
        history = histories.get(trial.id, [])
        value = best(history, objective) if trial.status is Status.SUCCEEDED else None
        records.append(
            TrialRecord(
                number=number,
                status=trial.status,
                params=trial.trial_params or {},
                intermediate=per_epoch(history, objective),
                value=value[0] if value else None,
            )
        )
    return records


def distributions(space: Space) -> dict[str, BaseDistribution]:
    """Optuna's distribution per path; a choice is drawn as the index of its value."""
    found: dict[str, BaseDistribution] = {}
    for path, dimension in space.items():
        distribution = as_distribution(dimension)
        if isinstance(distribution, Choice):
            found[path] = CategoricalDistribution(list(range(len(distribution.values))))
        elif isinstance(distribution, IntRange):
            found[path] = IntDistribution(
                distribution.low, distribution.high, step=distribution.step, log=distribution.log
            )
        else:
            found[path] = FloatDistribution(
                distribution.low, distribution.high, log=isinstance(distribution, LogUniform)
            )
    return found


def to_optuna_params(space: Space, params: Params) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for path, value in params.items():
        distribution = as_distribution(space[path])
        encoded[path] = (
            distribution.values.index(value) if isinstance(distribution, Choice) else value
        )
    return encoded


def from_optuna_params(space: Space, encoded: dict[str, Any]) -> Params:
    params: Params = {}
    for path, value in encoded.items():
        distribution = as_distribution(space[path])
        params[path] = distribution.values[value] if isinstance(distribution, Choice) else value
    return params


def in_memory_study(
    *,
    maximise: bool,
    trials: list[TrialRecord],
    space: Space | None = None,
    sampler: optuna.samplers.BaseSampler | None = None,
    system_attrs: dict[int, dict[str, Any]] | None = None,
) -> optuna.Study:
    """A study in Optuna's in-memory storage holding our trials, in their numbers' order."""
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        direction="maximize" if maximise else "minimize",
        sampler=sampler,
    )
    known = distributions(space) if space is not None else {}
    records = system_attrs or {}
    for trial in sorted(trials, key=lambda t: t.number):
        state = _STATES[trial.status]
        complete = state is TrialState.COMPLETE and trial.value is not None
        intermediate = {
            step: value for step, value in trial.intermediate.items() if math.isfinite(value)
        }
        if state is TrialState.COMPLETE and not complete:
            state = TrialState.FAIL  # succeeded without a value of the objective
        encoded = to_optuna_params(space, trial.params) if space is not None else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks some of this API experimental
            study.add_trial(
                optuna.trial.create_trial(
                    state=state,
                    value=trial.value if complete else None,
                    params=encoded,
                    distributions={path: known[path] for path in encoded},
                    intermediate_values=intermediate,
                    system_attrs=records.get(trial.number, {}),
                )
            )
    return study
