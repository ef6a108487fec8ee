"""Studies: sweeps over a base spec, what they were asked for and the trials drawn up front."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from service.domain.experiments import Status


class StudyStatus(enum.StrEnum):
    """Where a study is in its life; its trials carry their own Status."""

    RUNNING = "running"
    """Creating trials as earlier ones finish, up to its max_parallel at a time."""
    FINISHED = "finished"
    """Every trial it will ever have has ended."""
    CANCELLED = "cancelled"
    """Stopped on a user's request: no new trials; its queued and running ones were cancelled."""


ObjectiveMetric = Literal["val_accuracy", "val_loss", "accuracy", "loss"]
"""The per-epoch metric a study ranks its trials by (`service.studies.objective`)."""


@dataclass(frozen=True)
class StudyDefinition:
    """What a study was asked for, validated and resolved at creation; stored as JSON (its
    `as_json` is what GET /studies/{id} shows as `definition`)."""

    base: dict[str, Any]
    """The spec every trial starts from (overrides such as `epochs` applied)."""
    space: dict[str, Any]
    """Path in the spec -> its dimension, as JSON."""
    sampler: str
    objective: ObjectiveMetric
    n_trials: int
    max_parallel: int
    seed: int
    max_attempts: int
    preset: str | None = None
    pruner: dict[str, Any] | None = None
    """As JSON; `service.studies.pruning.Pruner` reads it (Optuna only where it prunes)."""

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> StudyDefinition:
        return cls(
            base=stored["base"],
            space=stored["space"],
            sampler=stored["sampler"],
            objective=stored["objective"],
            n_trials=stored["n_trials"],
            max_parallel=stored["max_parallel"],
            seed=stored["seed"],
            max_attempts=stored["max_attempts"],
            preset=stored.get("preset"),
            pruner=stored.get("pruner"),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "sampler": self.sampler,
            "n_trials": self.n_trials,
            "max_parallel": self.max_parallel,
            "objective": self.objective,
            "pruner": self.pruner,
            "seed": self.seed,
            "base": self.base,
            "space": self.space,
            "max_attempts": self.max_attempts,
        }


@dataclass(frozen=True)
class PlannedTrial:
    """A trial drawn up front (grid, random, a preset): what it varies, in a few words, and
    its summary from the Keras dry run at creation."""

    params: dict[str, Any]
    label: str
    summary: dict[str, Any] | None

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> PlannedTrial:
        return cls(params=stored["params"], label=stored["label"], summary=stored["summary"])

    def as_json(self) -> dict[str, Any]:
        return {"params": self.params, "label": self.label, "summary": self.summary}


@dataclass(frozen=True)
class Study:
    """A sweep over a base spec; `plan` its trials when they were all drawn up front (grid,
    random, presets)."""

    id: str
    name: str
    client_id: str
    definition: StudyDefinition
    plan: tuple[PlannedTrial, ...] | None
    status: StudyStatus
    created_at: datetime
    finished_at: datetime | None
    owner_id: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class TrialHead:
    """What a study's leaderboard, curves and progress read of a trial: not its spec, summary
    or epoch count, which a 100-trial leaderboard used to decode and count and never showed."""

    id: str
    name: str
    status: Status
    trial_params: dict[str, Any] | None
    test_accuracy: float | None
    error: str | None
