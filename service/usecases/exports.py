"""Take-home downloads of one experiment: its plain-Keras script or notebook, its trained model."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.db import repository
from service.db.session import Database
from service.domain import Experiment, Status
from service.errors import ModelNotFound, ModelNotReady, SpecRejected
from service.export import notebook
from service.storage import ModelStore

PYTHON_SCRIPT = "text/x-python; charset=utf-8"
JUPYTER_NOTEBOOK = "application/x-ipynb+json"
KERAS_MODEL = "application/octet-stream"


@dataclass(frozen=True)
class Download:
    filename: str
    media_type: str
    chunks: Iterator[bytes]
    size: int


def notebook_script(session: Session, experiment_id: str) -> Download:
    experiment = repository.get_experiment(session, experiment_id)
    return _text(experiment, ".py", PYTHON_SCRIPT, _program(experiment, notebook.script))


def notebook_file(session: Session, experiment_id: str) -> Download:
    experiment = repository.get_experiment(session, experiment_id)
    program = _program(experiment, notebook.notebook_json)
    return _text(experiment, ".ipynb", JUPYTER_NOTEBOOK, program)


def trained_model(*, db: Database, store: ModelStore, experiment_id: str) -> Download:
    """The `.keras` file a succeeded experiment saved, streamed from the model store."""
    with db.scope() as session:
        experiment = repository.get_experiment(session, experiment_id)
    if experiment.status is not Status.SUCCEEDED or not experiment.model_uri:
        status = experiment.status.value
        raise ModelNotReady(
            f"experiment {experiment_id} is {status}; its model can be downloaded once it has "
            "succeeded"
            if not experiment.status.is_finished
            else f"experiment {experiment_id} is {status}, so it has no trained model; only "
            "succeeded experiments have one"
        )
    key = store.stored_key(experiment.model_uri)
    if not store.exists(key):
        raise ModelNotFound(
            f"experiment {experiment_id}'s model file is missing from the model store"
        )
    return Download(
        filename=_filename(experiment, ".keras"),
        media_type=KERAS_MODEL,
        chunks=store.iter_bytes(key),
        size=store.size(key),
    )


def _program(experiment: Experiment, write: Callable[[Experiment], str]) -> str:
    """The program `write` makes of the experiment's stored spec, which the generator validates
    first: a spec stored before a rule it breaks was added is the client's to correct."""
    try:
        return write(experiment)
    except ValidationError as error:
        raise SpecRejected(
            f"experiment {experiment.id}'s stored spec is no longer accepted "
            f"({error.error_count()} problems), so it cannot be written as Keras; submit a "
            "corrected copy with POST /experiments and download that one",
            details=error.errors(include_url=False, include_context=False),
        ) from None


def _text(experiment: Experiment, suffix: str, media_type: str, text: str) -> Download:
    body = text.encode()
    return Download(_filename(experiment, suffix), media_type, iter([body]), len(body))


def _filename(experiment: Experiment, suffix: str) -> str:
    """`<name as a slug>-<first 8 of the id><suffix>`: safe in a Content-Disposition header."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", experiment.name).strip("-.")[:60] or "experiment"
    return f"{slug}-{experiment.id[:8]}{suffix}"
