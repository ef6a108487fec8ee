"""Who may change what: a student their own work, a teacher everything; and, under
CLASS_READS=own, who may read what."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.db import ownership as owners
from service.db.ownership import OwnerFilter
from service.db.session import Database
from service.domain import Caller
from service.errors import Forbidden

NOBODY = "nobody (made before the class, or with API_TOKEN)"


def check_change(caller: Caller, *, what: str, owner_id: str | None, owner: str | None) -> None:
    """Raise 403 naming the owner unless `caller` may change `what`."""
    if caller.may_change(owner_id):
        return
    raise Forbidden(
        f"{what} belongs to {owner or NOBODY}; only its owner or a teacher may change it"
    )


ME = "me"


def list_filter(caller: Caller, owner: str | None, *, class_reads: str) -> OwnerFilter | None:
    """Whose work a list shows: `me` (the caller's own, whoever they are: a person, the
    API_TOKEN holder, an address), a person's name, or everyone's; under CLASS_READS=own a
    student's own whatever they ask."""
    if class_reads == "own" and not caller.teacher:
        return OwnerFilter(client_id=caller.client_id)
    if owner is None:
        return None
    if owner == ME:
        return OwnerFilter(client_id=caller.client_id)
    return OwnerFilter(name=owner)


def prediction_owner(caller: Caller, *, class_reads: str) -> str | None:
    """Whose models alone may answer the caller's predictions: a student's own while
    CLASS_READS=own (`best`, `latest` and aliases included), else None: every model."""
    if class_reads != "own" or caller.teacher:
        return None
    # Under CLASS_READS=own a reader without a person is refused (401) before this; should one
    # get here, an id nobody owns lets no model answer.
    return caller.owner_id or caller.client_id


# The path parameters that name owned things, and what each names.
OWNED_BY_PATH: dict[str, owners.Owned] = {
    "experiment_id": "experiment",
    "study_id": "study",
    "alias": "alias",
    "name": "alias",  # /models/{name}: an alias's name
}


def _owners(
    db: Database, path_params: Mapping[str, Any]
) -> list[tuple[str, str, tuple[str | None, str | None]]]:
    """(kind, key, (owner id, owner name)) of each existing thing the path names."""
    found: list[tuple[str, str, tuple[str | None, str | None]]] = []
    with db.scope() as session:
        for param, kind in OWNED_BY_PATH.items():
            if param in path_params:
                key = str(path_params[param])
                owner = owners.owner_of(session, kind, key)
                if owner is not None:
                    found.append((kind, key, owner))
    return found


def check_changes(db: Database, caller: Caller, path_params: Mapping[str, Any]) -> None:
    """Refuse (403, naming the owner) a change to an experiment, study or alias the path names
    that is not the caller's; a teacher may change everything. What does not exist yet (a new
    alias) or not at all (the route's 404) passes."""
    if caller.teacher:
        return
    for kind, key, (owner_id, owner) in _owners(db, path_params):
        check_change(caller, what=f"{kind} {key}", owner_id=owner_id, owner=owner)


def check_reads(db: Database, caller: Caller, path_params: Mapping[str, Any]) -> None:
    """Under CLASS_READS=own: refuse (403) a student's read of an experiment or study that is
    not theirs; an unknown id is left to the route's 404."""
    for kind, key, (owner_id, owner) in _owners(db, path_params):
        if kind != "alias" and not caller.may_change(owner_id):
            raise Forbidden(
                f"{kind} {key} belongs to {owner or NOBODY}; while CLASS_READS=own you read "
                "only your own work"
            )
