"""Adding the class, handing out tokens, rotating and revoking them.

A token is `secrets.token_urlsafe(32)` (256 random bits): it is answered once and only its
sha256 is kept. A hash that fast is right for a secret this long (there is nothing to guess),
and finding a person is a look-up by the digest, so no comparison leaks how much of a token
was right.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from service.db import people as people_db
from service.db.session import Database
from service.domain import Person, Role
from service.errors import InvalidInput

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
MAX_CSV_PEOPLE = 500


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Issued:
    """A person and their token, which is shown this once."""

    person: Person
    token: str


def add_people(db: Database, entries: Sequence[tuple[str, Role]]) -> list[Issued]:
    """Add everyone in `entries` (name, role) with a fresh token each, all or none."""
    names = [name for name, _ in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidInput(
            f"{', '.join(repr(name) for name in repeated)} appear more than once; give each "
            "person once"
        )
    tokens = [new_token() for _ in entries]
    with db.scope() as session:
        added = people_db.add_people(
            session,
            [
                (name, role, token_digest(token))
                for (name, role), token in zip(entries, tokens, strict=True)
            ],
        )
    for person in added:
        log.info("person %s added as a %s", person.name, person.role.value)
    return [Issued(person, token) for person, token in zip(added, tokens, strict=True)]


def rotate_token(db: Database, person_id: str) -> Issued:
    token = new_token()
    with db.scope() as session:
        person = people_db.set_token_digest(session, person_id, token_digest(token))
    log.info("person %s has a new token; the old one is refused", person.name)
    return Issued(person, token)


def revoke(db: Database, person_id: str) -> Person:
    with db.scope() as session:
        person = people_db.revoke(session, person_id)
    log.info("person %s revoked; their work stays", person.name)
    return person


def parse_csv(text: str) -> list[tuple[str, str]]:
    """(name, role) from a class list: a `name` column and an optional `role` one (student
    when missing or empty), or one name a line with no header."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if any(c.strip() for c in row)]
    except csv.Error as error:
        raise InvalidInput(f"the CSV cannot be read ({error}); save it as plain CSV") from error
    if not rows:
        raise InvalidInput("the CSV has no names; give one person a line: name[,role]")
    header = [cell.strip().lower() for cell in rows[0]]
    if "name" in header:
        name_at, role_at = header.index("name"), header.index("role") if "role" in header else None
        rows = rows[1:]
    else:
        name_at, role_at = 0, 1 if len(rows[0]) > 1 else None
    if not rows:
        raise InvalidInput("the CSV has a header but no names; give one person a line")
    if len(rows) > MAX_CSV_PEOPLE:
        raise InvalidInput(f"the CSV has {len(rows)} people, over {MAX_CSV_PEOPLE}; split it")
    found = []
    for row in rows:
        name = row[name_at].strip() if name_at < len(row) else ""
        role = row[role_at].strip().lower() if role_at is not None and role_at < len(row) else ""
        found.append((name, role or Role.STUDENT.value))
    return found


def sheet(issued: Sequence[Issued]) -> str:
    """The name-token sheet to hand out, as CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "role", "token"])
    for item in issued:
        writer.writerow([item.person.name, item.person.role.value, item.token])
    return out.getvalue()
