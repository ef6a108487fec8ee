"""People of a class: who to add, and what is answered about them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from service.domain import Person, PersonActivity, Role

# Letters, digits, spaces, '.', '_' and '-'; not "me", which ?owner=me means.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$"
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, pattern=NAME_PATTERN)]
RESERVED_NAMES = frozenset({"me"})


def _not_reserved(name: str) -> str:
    if name.lower() in RESERVED_NAMES:
        raise ValueError(f"{name!r} is reserved (?owner=me means the caller); choose another name")
    return name


class PersonCreate(BaseModel):
    """One person: a name (1-64 letters, digits, spaces, '.', '_', '-') and a role."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: PersonName
    role: Role = Role.STUDENT

    _name = field_validator("name")(_not_reserved)


class PeopleCreate(BaseModel):
    """A whole class at once: each a name (a student) or {"name", "role"}."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    people: list[PersonCreate | PersonName] = Field(min_length=1, max_length=500)

    def entries(self) -> list[tuple[str, Role]]:
        return [
            (item.name, item.role)
            if isinstance(item, PersonCreate)
            else (_not_reserved(item), Role.STUDENT)
            for item in self.people
        ]


class PersonPublic(BaseModel):
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked: bool

    @classmethod
    def fields_of(cls, person: Person) -> dict[str, object]:
        return {
            "id": person.id,
            "name": person.name,
            "role": person.role,
            "created_at": person.created_at,
            "revoked": person.revoked_at is not None,
        }

    @classmethod
    def of(cls, person: Person) -> PersonPublic:
        return cls.model_validate(cls.fields_of(person))


class PersonIssued(PersonPublic):
    """A person and their token: shown this once, only its hash is kept."""

    token: str


class PeopleIssued(BaseModel):
    data: list[PersonIssued]
    count: int


class PersonActivityPublic(PersonPublic):
    queued: int
    running: int
    done: int
    best_test_accuracy: float | None
    best_experiment_id: str | None = Field(description="the run that scored it")
    training_minutes_today: float = Field(description="since 00:00 UTC")
    last_active: datetime | None = Field(description="their latest submission or finish")

    @classmethod
    def of_activity(cls, row: PersonActivity) -> PersonActivityPublic:
        return cls.model_validate(
            {
                **cls.fields_of(row.person),
                "queued": row.queued,
                "running": row.running,
                "done": row.done,
                "best_test_accuracy": row.best_accuracy,
                "best_experiment_id": row.best_experiment_id,
                "training_minutes_today": round(row.training_seconds_today / 60, 2),
                "last_active": row.last_active,
            }
        )


class CallerPublic(BaseModel):
    name: str | None = Field(description="the person's name; null for API_TOKEN or anonymous")
    role: Role | None
    signed_in: bool = Field(description="the token sent opened something")
    teacher: bool = Field(description="may change everything and see the class")


class PeoplePublic(BaseModel):
    data: list[PersonActivityPublic]
    count: int
