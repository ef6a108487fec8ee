"""Which trials a study runs: a grid, seeded random draws, or Optuna's TPE asked one at a time.

Grid and random studies are planned whole when the study is created (so every trial is
validated before any is queued); TPE picks each next trial from the results so far.
"""

from __future__ import annotations

import math
import random
from typing import Literal

import optuna

from service.studies.rebuild import (
    TrialRecord,
    distributions,
    from_optuna_params,
    in_memory_study,
)
from service.studies.space import (
    Choice,
    IntRange,
    LogUniform,
    Params,
    Space,
    Uniform,
    as_distribution,
    grid,
)

SamplerName = Literal["grid", "random", "tpe"]


def plan(sampler: SamplerName, space: Space, *, n_trials: int, seed: int) -> list[Params] | None:
    """Every trial's parameters for a grid or random study; None for tpe (asked as it goes)."""
    if sampler == "grid":
        return grid(space)
    if sampler == "random":
        rng = random.Random(seed)
        return [{path: _draw(rng, dim) for path, dim in space.items()} for _ in range(n_trials)]
    return None


def _draw(rng: random.Random, dimension: object) -> object:
    distribution = as_distribution(dimension)  # type: ignore[arg-type]
    match distribution:
        case Choice():
            return rng.choice(distribution.values)
        case IntRange() if distribution.log:
            return round(
                math.exp(rng.uniform(math.log(distribution.low), math.log(distribution.high)))
            )
        case IntRange():
            return rng.choice(distribution.values)
        case LogUniform():
            return math.exp(rng.uniform(math.log(distribution.low), math.log(distribution.high)))
        case Uniform():
            return rng.uniform(distribution.low, distribution.high)
    raise TypeError(f"unknown dimension {dimension!r}")  # pragma: no cover - the union is closed


def ask_tpe(
    space: Space, trials: list[TrialRecord], *, maximise: bool, seed: int, n_trials: int
) -> Params:
    """The next trial TPE proposes given every trial so far (its number is len(trials))."""
    sampler = optuna.samplers.TPESampler(
        seed=seed + len(trials), n_startup_trials=max(1, min(10, n_trials // 3))
    )
    study = in_memory_study(maximise=maximise, trials=trials, space=space, sampler=sampler)
    trial = study.ask(distributions(space))
    return from_optuna_params(space, trial.params)
