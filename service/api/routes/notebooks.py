"""Keras code and notebooks in: POST /experiments/from-code and POST /notebooks.

The source is read (service/spec/from_code/), never run; `?dry_run=true` answers what was
read without queueing anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from service.api.deps import (
    ClientIdDep,
    DatabaseDep,
    QueueDep,
    SettingsDep,
    TokenFirstRoute,
    Writer,
)
from service.config import Settings
from service.db.session import Database
from service.domain import Experiment
from service.errors import InvalidInput
from service.jobs.queue import JobQueue
from service.schemas.errors import error_responses
from service.schemas.experiments import NOT_BLANK
from service.schemas.notebooks import CodeIn, CodeReadPublic, NotebookReadPublic
from service.spec.from_notebook import NotANotebook, Notebook, notebook_name, parse_notebook
from service.usecases.reading import Read, read_code, read_notebook, submit_read

router = APIRouter(route_class=TokenFirstRoute, tags=["notebooks"])

DryRun = Annotated[
    bool, Query(description="answer what was read (spec, summary, skipped) without queueing")
]
_CODE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            # Not only whitespace, as code_body checks.
            "text/x-python": {"schema": {"type": "string", "pattern": NOT_BLANK}},
            "application/json": {"schema": CodeIn.model_json_schema()},
        },
    }
}
# What parse_notebook reads: nbformat 4, its cells of a known type with their source.
NOTEBOOK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "nbformat 4 JSON, as Jupyter saves it",
    "required": ["cells"],
    "properties": {
        "nbformat": {"const": 4},
        "cells": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["cell_type"],
                "properties": {
                    "cell_type": {"enum": ["code", "markdown", "raw"]},
                    "source": {
                        "anyOf": [
                            {"type": "string"},
                            {"type": "array", "items": {"type": "string"}},
                        ]
                    },
                },
            },
        },
    },
}
_NOTEBOOK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": NOTEBOOK_SCHEMA},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "an .ipynb file: " + NOTEBOOK_SCHEMA["description"],
                        }
                    },
                }
            },
        },
    }
}


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"the body is not UTF-8 text ({error}); send the code as UTF-8"
        ) from None


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip() == "application/json"


async def code_body(
    request: Request,
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> CodeIn:
    """The code as a text/x-python (or any text) body, or as JSON {"code": ...}."""
    raw = await request.body()
    if not _is_json(request):
        text = _text(raw)
        if not text.strip():
            raise InvalidInput("the body is empty; send Keras code (a notebook cell)")
        return CodeIn(code=text, name=name)
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise InvalidInput(
            f'the body is not JSON ({error}); send {{"code": "..."}} or the code itself as '
            "text/x-python"
        ) from None
    try:
        code_in = CodeIn.model_validate(document)
    except ValidationError as error:
        raise RequestValidationError(
            [{**problem, "loc": ("body", *problem["loc"])} for problem in error.errors()],
            body=document,
        ) from None
    return code_in if name is None else code_in.model_copy(update={"name": name})


async def notebook_body(
    request: Request,
    name: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="else the file's name, else its title"),
    ] = None,
) -> Notebook:
    """The notebook as an .ipynb upload (multipart field "file") or as its JSON body."""
    filename = None
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput('upload the .ipynb file in the form field "file"')
        filename = upload.filename
        raw = await upload.read()
    else:
        raw = await request.body()
    try:
        document = json.loads(_text(raw))
    except (ValueError, RecursionError) as error:
        raise InvalidInput(
            f"the notebook is not JSON ({error}); upload an .ipynb file as it is saved"
        ) from None
    try:
        return parse_notebook(document, name=name or notebook_name(filename, document))
    except NotANotebook as error:
        raise InvalidInput(str(error)) from None


@dataclass(frozen=True)
class Queueing:
    """What both routes need to queue what they read, or only to answer it with dry_run."""

    settings: Settings
    db: Database
    queue: JobQueue
    client_id: str
    dry_run: bool
    response: Response

    def submit(self, read: Read) -> list[Experiment] | None:
        if self.dry_run:
            self.response.status_code = status.HTTP_200_OK
            return None
        return submit_read(
            read, settings=self.settings, db=self.db, queue=self.queue, client_id=self.client_id
        )


async def queueing(
    response: Response,
    settings: SettingsDep,
    db: DatabaseDep,
    queue: QueueDep,
    client: ClientIdDep,
    dry_run: DryRun = False,
) -> Queueing:
    return Queueing(settings, db, queue, client, dry_run, response)


QueueingDep = Annotated[Queueing, Depends(queueing)]


@router.post(
    "/experiments/from-code",
    response_model=CodeReadPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Writer],
    responses=error_responses(401, 413, 422, 429),
    openapi_extra=_CODE_BODY,
)
def experiment_from_code(
    code_in: Annotated[CodeIn, Depends(code_body)], queueing: QueueingDep
) -> CodeReadPublic:
    """Read a notebook cell of Keras code (never run) into an experiment and queue it (202);
    with dry_run, only answer what was read (200). A construct the spec cannot hold is a 422
    naming its line and column."""
    read = read_code(
        code_in.code,
        queueing.settings,
        name=code_in.name,
        description=code_in.description,
        tags=code_in.tags,
    )
    queued = queueing.submit(read)
    return CodeReadPublic.of(read, queued)


@router.post(
    "/notebooks",
    response_model=NotebookReadPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Writer],
    responses=error_responses(401, 413, 422, 429),
    openapi_extra=_NOTEBOOK_BODY,
)
def experiments_from_notebook(
    notebook: Annotated[Notebook, Depends(notebook_body)], queueing: QueueingDep
) -> NotebookReadPublic:
    """Every Sequential a notebook builds, compiles and fits becomes an experiment, in order,
    tagged with the notebook's name and described by its section's heading (202; 200 with
    dry_run). A notebook with nothing to train is a 422."""
    read = read_notebook(notebook, queueing.settings)
    queued = queueing.submit(read)
    base = CodeReadPublic.of(read, queued)
    return NotebookReadPublic(notebook=notebook.name, **dict(base))
