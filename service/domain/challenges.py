"""Class challenges: their rules and their entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.domain.experiments import Status


@dataclass(frozen=True)
class Rules:
    max_params: int | None = None
    max_epochs: int | None = None
    max_train_seconds: float | None = None
    """Enforced while training: the entry is stopped and failed when it trains longer."""
    train_size: int | None = None
    """Every entry trains on exactly this many images: the same data for everyone."""
    allowed_layers: tuple[str, ...] = field(default=())
    """Keras layer types an entry may use; empty allows all."""
    allowed_optimizers: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "max_params": self.max_params,
            "max_epochs": self.max_epochs,
            "max_train_seconds": self.max_train_seconds,
            "train_size": self.train_size,
            "allowed_layers": list(self.allowed_layers),
            "allowed_optimizers": list(self.allowed_optimizers),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Rules:
        return cls(
            max_params=body.get("max_params"),
            max_epochs=body.get("max_epochs"),
            max_train_seconds=body.get("max_train_seconds"),
            train_size=body.get("train_size"),
            allowed_layers=tuple(body.get("allowed_layers") or ()),
            allowed_optimizers=tuple(body.get("allowed_optimizers") or ()),
        )


@dataclass(frozen=True)
class Challenge:
    """A class challenge. Its split seed stays in the database: nothing outside scoring needs it."""

    id: str
    name: str
    description: str | None
    rules: Rules
    max_entries_per_person: int | None
    closes_at: datetime | None
    closed_at: datetime | None
    created_at: datetime

    def is_open(self, now: datetime) -> bool:
        return self.closed_at is None and (self.closes_at is None or now < self.closes_at)


@dataclass(frozen=True)
class ChallengeEntry:
    """An experiment entered into a challenge, with what its leaderboard row shows."""

    experiment_id: str
    challenge_id: str
    entrant: str
    entrant_name: str
    created_at: datetime
    status: Status
    params: int | None
    epochs: int
    public_score: float | None
    private_score: float | None
