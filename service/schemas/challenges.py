"""Challenge bodies: what a teacher sends to create one, and what everyone reads back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from service.domain import Challenge, Rules
from service.spec.layers import LAYER_TYPES
from service.spec.training import TRAIN_IMAGES

LayerType = Literal[LAYER_TYPES]  # type: ignore[valid-type]
OptimizerType = Literal["SGD", "Adagrad", "RMSprop", "Adam", "Adamax", "Nadam"]


class RulesIn(BaseModel):
    """Every rule is optional; each is checked when an entry is made (422 naming the rule)."""

    model_config = ConfigDict(extra="forbid")

    max_params: int | None = Field(default=None, ge=1, description="parameters of the net")
    max_epochs: int | None = Field(default=None, ge=1, le=1000)
    max_train_seconds: float | None = Field(
        default=None, gt=0, description="wall time of a training; an entry past it is stopped"
    )
    train_size: int | None = Field(
        default=None, ge=1, le=TRAIN_IMAGES, description="every entry trains on this many images"
    )
    allowed_layers: list[LayerType] | None = Field(
        default=None, min_length=1, description="Keras layer types an entry may use"
    )
    allowed_optimizers: list[OptimizerType] | None = Field(default=None, min_length=1)

    def to_domain(self) -> Rules:
        return Rules(
            max_params=self.max_params,
            max_epochs=self.max_epochs,
            max_train_seconds=self.max_train_seconds,
            train_size=self.train_size,
            allowed_layers=tuple(self.allowed_layers or ()),
            allowed_optimizers=tuple(self.allowed_optimizers or ()),
        )


class ChallengeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    rules: RulesIn = Field(default_factory=RulesIn)
    max_entries_per_person: int | None = Field(default=None, ge=1, le=1000)
    closes_at: AwareDatetime | None = Field(
        default=None, description="when entries stop (ISO 8601 with a time zone); or close by hand"
    )

    @field_validator("closes_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("closes_at is in the past; give a time to come, with its time zone")
        return value


class RulesPublic(BaseModel):
    max_params: int | None
    max_epochs: int | None
    max_train_seconds: float | None
    train_size: int | None
    allowed_layers: list[str]
    allowed_optimizers: list[str]


class ChallengePublic(BaseModel):
    id: str
    name: str
    description: str | None
    rules: RulesPublic
    max_entries_per_person: int | None
    closes_at: datetime | None
    closed_at: datetime | None
    open: bool
    seconds_left: float | None = Field(description="until closes_at; null without one")
    created_at: datetime
    tag: str = Field(description="the tag every entry carries: GET /experiments?tag=...")

    @classmethod
    def of(cls, challenge: Challenge, *, now: datetime, tag: str) -> ChallengePublic:
        is_open = challenge.is_open(now)
        return cls(
            id=challenge.id,
            name=challenge.name,
            description=challenge.description,
            rules=RulesPublic(**challenge.rules.to_json()),
            max_entries_per_person=challenge.max_entries_per_person,
            closes_at=challenge.closes_at,
            closed_at=challenge.closed_at or (challenge.closes_at if not is_open else None),
            open=is_open,
            seconds_left=(
                max(0.0, (challenge.closes_at - now).total_seconds())
                if challenge.closes_at is not None and is_open
                else None
            ),
            created_at=challenge.created_at,
            tag=tag,
        )


class ChallengesPublic(BaseModel):
    data: list[ChallengePublic]


class StandingPublic(BaseModel):
    rank: int | None = Field(description="null until one of the person's entries is scored")
    person: str
    score: float | None = Field(
        description="the public half's accuracy while open; the private half's after the close"
    )
    public_score: float | None
    private_score: float | None = Field(
        description="shown after the close (and to a teacher); null to students before"
    )
    public_rank: int | None = Field(description="after the close: the rank on the public board")
    entries_used: int
    experiment_id: str | None
    params: int | None
    epochs: int | None
    entered_at: datetime | None


class YourEntriesPublic(BaseModel):
    """The caller's own entries: what the page shows as "my entries and how many remain"."""

    entries_used: int
    entries_left: int | None = Field(description="null when the challenge sets no allowance")
    experiment_ids: list[str] = Field(description="oldest first")


class LeaderboardPublic(BaseModel):
    challenge: ChallengePublic
    ranked_by: Literal["public", "private"]
    rows: list[StandingPublic]
    yours: YourEntriesPublic
