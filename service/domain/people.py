"""People of a class and who a request is (a person, the API_TOKEN holder, anyone)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


# People of a class.
class Role(enum.StrEnum):
    STUDENT = "student"
    """Reads everyone's work (unless CLASS_READS=own), changes only their own."""
    TEACHER = "teacher"
    """Changes everything, adds and removes people."""


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None


PERSON_CLIENT_PREFIX = "person:"


def person_client_id(person_id: str) -> str:
    """What a person's work counts against (queue caps, fair share): them, whatever their
    address or token."""
    return PERSON_CLIENT_PREFIX + person_id


def owner_of(client_id: str) -> str | None:
    """The person who owns work submitted as `client_id`; None for anonymous or API_TOKEN work."""
    if client_id.startswith(PERSON_CLIENT_PREFIX):
        return client_id.removeprefix(PERSON_CLIENT_PREFIX)
    return None


@dataclass(frozen=True)
class Caller:
    """Who a request is: a person of the class, the API_TOKEN holder, or anyone at all."""

    client_id: str
    """What their submissions count against."""
    person: Person | None = None
    teacher: bool = False
    """May change everything: the API_TOKEN holder, a teacher, or anyone while the service is
    open (no API_TOKEN, nobody added)."""
    signed_in: bool = False
    """Sent a token that opened something (API_TOKEN or a person's)."""

    @property
    def owner_id(self) -> str | None:
        return self.person.id if self.person else None

    @property
    def name(self) -> str | None:
        return self.person.name if self.person else None

    @property
    def label(self) -> str:
        """How the log names them."""
        if self.person is not None:
            return self.person.name
        return "the teacher" if self.signed_in else f"client {self.client_id}"

    def may_change(self, owner_id: str | None) -> bool:
        return self.teacher or (owner_id is not None and owner_id == self.owner_id)


@dataclass(frozen=True)
class PersonActivity:
    """A person and where their work stands: the teacher's row for them."""

    person: Person
    queued: int
    running: int
    done: int
    best_accuracy: float | None = None
    best_experiment_id: str | None = None
    training_seconds_today: float = 0.0
    last_active: datetime | None = None
