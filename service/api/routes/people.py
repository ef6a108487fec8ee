"""The class: add people (one, a list, or a CSV), list them with their work, rotate and revoke
their tokens. A teacher's routes (the API_TOKEN holder is one)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Path, Query, Response, UploadFile, status
from pydantic import ValidationError

from service.api.deps import (
    DatabaseDep,
    ReaderDep,
    RuntimeDep,
    TokenFirstRoute,
    Writer,
    WriterDep,
)
from service.db import people as people_db
from service.domain import Caller, Role
from service.errors import Forbidden, InvalidInput
from service.schemas.errors import error_responses
from service.schemas.people import (
    CallerPublic,
    PeopleCreate,
    PeopleIssued,
    PeoplePublic,
    PersonActivityPublic,
    PersonCreate,
    PersonIssued,
    PersonPublic,
)
from service.usecases import people
from service.usecases.people import Issued

router = APIRouter(route_class=TokenFirstRoute, prefix="/people", tags=["people"])
PersonId = Annotated[str, Path(min_length=1, max_length=64, description="the person's id")]
SheetFormat = Annotated[
    Literal["json", "csv"], Query(description="csv: the name-token sheet to hand out")
]
MAX_CSV_BYTES = 256 * 1024


def _teacher_only(caller: Caller, doing: str) -> None:
    if not caller.teacher:
        raise Forbidden(f"only a teacher may {doing}; ask yours")


def _issued(item: Issued) -> PersonIssued:
    return PersonIssued.model_validate({**PersonPublic.fields_of(item.person), "token": item.token})


def _answer(issued: list[Issued], format: str) -> PeopleIssued | Response:
    if format == "csv":
        return Response(people.sheet(issued), status_code=201, media_type="text/csv; charset=utf-8")
    return PeopleIssued(data=[_issued(item) for item in issued], count=len(issued))


@router.post(
    "",
    dependencies=[Writer],
    response_model=PersonIssued | PeopleIssued,
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"content": {"text/csv": {}}, "description": "with ?format=csv, the sheet"},
        **error_responses(401, 403, 409, 413, 422),
    },
)
def add_people(
    body: PersonCreate | PeopleCreate,
    caller: WriterDep,
    runtime: RuntimeDep,
    format: SheetFormat = "json",
) -> PersonIssued | PeopleIssued | Response:
    """One person (`{"name", "role"}`), answered with their token, or a whole class
    (`{"people": ["alice", {"name": "bob", "role": "teacher"}]}`), answered with everyone's.
    A token is shown this once; only its hash is kept."""
    _teacher_only(caller, "add people")
    entries = [(body.name, body.role)] if isinstance(body, PersonCreate) else body.entries()
    issued = people.add_people(runtime.db, entries)
    runtime.class_exists = True  # from now on a request without a token opens nothing here
    if isinstance(body, PersonCreate) and format == "json":
        return _issued(issued[0])
    return _answer(issued, format)


@router.post(
    "/upload",
    dependencies=[Writer],
    response_model=PeopleIssued,
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"content": {"text/csv": {}}, "description": "with ?format=csv, the sheet"},
        **error_responses(401, 403, 409, 413, 422),
    },
)
def upload_people(
    caller: WriterDep,
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="CSV: a name column and an optional role")],
    format: SheetFormat = "json",
) -> PeopleIssued | Response:
    """A class list as a CSV file (`name,role` with a header, or one name a line)."""
    _teacher_only(caller, "add people")
    content = file.file.read(MAX_CSV_BYTES + 1)
    if len(content) > MAX_CSV_BYTES:
        raise InvalidInput(f"the CSV is over {MAX_CSV_BYTES:,} bytes; split the class")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"the CSV is not UTF-8 text ({error.reason}); save it as UTF-8"
        ) from error
    rows = people.parse_csv(text)
    entries: list[tuple[str, Role]] = []
    for line, (name, role) in enumerate(rows, start=1):
        try:
            person = PersonCreate.model_validate({"name": name, "role": role})
        except ValidationError as error:
            problem = "; ".join(str(detail["msg"]) for detail in error.errors())
            raise InvalidInput(f"CSV person {line} ({name!r}, {role!r}): {problem}") from error
        entries.append((person.name, person.role))
    issued = people.add_people(runtime.db, entries)
    runtime.class_exists = True
    return _answer(issued, format)


@router.get("/me", response_model=CallerPublic, responses=error_responses(401))
def who_am_i(caller: ReaderDep) -> CallerPublic:
    """Who the token sent makes you: a person, the API_TOKEN holder, or anonymous (the page
    shows it, and a teacher's class view)."""
    return CallerPublic(
        name=caller.name,
        role=caller.person.role if caller.person else None,
        signed_in=caller.signed_in,
        teacher=caller.teacher,
    )


@router.get("", response_model=PeoplePublic, responses=error_responses(401, 403))
def list_people(caller: ReaderDep, db: DatabaseDep) -> PeoplePublic:
    """Everyone, by name, with their queued, running and done work, best test accuracy,
    training minutes today and when they were last active (a teacher's view)."""
    _teacher_only(caller, "list the class")
    with db.scope() as session:
        rows = people_db.activity(session)
    return PeoplePublic(
        data=[PersonActivityPublic.of_activity(row) for row in rows], count=len(rows)
    )


@router.post(
    "/{person_id}/token",
    dependencies=[Writer],
    response_model=PersonIssued,
    responses=error_responses(401, 403, 404, 422),
)
def rotate_token(person_id: PersonId, caller: WriterDep, db: DatabaseDep) -> PersonIssued:
    """A new token for the person; the old one answers 401 from now on."""
    _teacher_only(caller, "issue tokens")
    return _issued(people.rotate_token(db, person_id))


@router.delete(
    "/{person_id}",
    dependencies=[Writer],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
)
def revoke_person(person_id: PersonId, caller: WriterDep, db: DatabaseDep) -> Response:
    """Their token opens nothing any more; their experiments, studies and aliases stay."""
    _teacher_only(caller, "remove people")
    people.revoke(db, person_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
