"""Experiments read from Keras code or a notebook: each read model checked as a submission
would be (spec, limits, Keras dry run), then queued, or only shown (a dry run)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from service.config import Settings
from service.db.session import Database
from service.domain import MAX_TAG_LENGTH, Experiment, ExperimentDraft
from service.errors import CodeUnreadable, NothingToTrain, SpecRejected
from service.jobs.queue import JobQueue
from service.spec.experiment import ExperimentSpec
from service.spec.from_code.reader import read_cells
from service.spec.from_code.results import CodeRefused, Reading, ReadModel, Skipped, Where
from service.spec.from_notebook import Notebook
from service.usecases.submission import check_queue_room, submit_experiment, validate_experiment

NOTHING_TO_TRAIN = (
    "builds no model to train: write model = keras.Sequential([...]) with its layers, then "
    "model.compile(loss=..., optimizer=..., metrics=[...]) and model.fit(X_train, y_train, "
    "epochs=...)"
)
MAX_NAME = 200
LAYER_NAMED = re.compile(r"^layers\[(\d+)\]")


@dataclass(frozen=True)
class ReadExperiment:
    """One model read from the source, as the experiment it would be."""

    draft: ExperimentDraft
    summary: dict[str, Any]
    notes: list[str]
    where: Where


@dataclass(frozen=True)
class Read:
    experiments: list[ReadExperiment]
    skipped: list[Skipped]


def _reading(cells: list[tuple[int | None, str]]) -> Reading:
    try:
        return read_cells(cells)
    except CodeRefused as refused:
        raise CodeUnreadable(
            str(refused), details=[{**refused.where.as_dict(), "msg": refused.reason}]
        ) from None


def _without_tags(body: Any, loc: tuple[Any, ...]) -> list[str | int]:
    """The path into the body, less the union tags pydantic puts in it (layers.1.Dense.units)."""
    path: list[str | int] = []
    found = body
    for part in loc:
        if isinstance(found, dict) and found.get("type") == part and part not in found:
            continue
        path.append(part)
        try:
            found = found[part]
        except (KeyError, IndexError, TypeError):
            found = None
    return path


def _experiment(
    model: ReadModel, settings: Settings, *, name: str, description: str | None, tags: list[str]
) -> ReadExperiment:
    body = model.spec()
    try:
        spec = ExperimentSpec.model_validate(body)
    except ValidationError as error:
        details, messages = [], []
        for problem in error.errors():
            loc = _without_tags(body, problem["loc"])
            message = str(problem["msg"]).removeprefix("Value error, ")
            named = LAYER_NAMED.match(message)
            # The architecture is checked on the whole list; its message names the layer.
            where = model.where_is([*loc, int(named.group(1))] if named else loc)
            place = ".".join(str(part) for part in loc)
            messages.append(f"{where}: {place}: {message}" if place else f"{where}: {message}")
            details.append({**where.as_dict(), "loc": loc, "msg": message, "type": problem["type"]})
        raise CodeUnreadable("; ".join(messages), details=details) from None
    draft = ExperimentDraft(name[:MAX_NAME].strip() or "untitled", description, spec, tuple(tags))
    try:
        summary = validate_experiment(spec, settings)
    except SpecRejected as rejected:
        raise CodeUnreadable(
            f"{model.where}: {rejected.message}", details=rejected.details
        ) from None
    notes = list(model.notes)
    if model.fit is None:
        notes.append("no model.fit(...): the spec's defaults (10 epochs of 32) are used")
    return ReadExperiment(draft, summary, notes, model.where)


def read_code(
    source: str,
    settings: Settings,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
) -> Read:
    """The one model a cell of Keras code builds, compiles (and fits)."""
    reading = _reading([(None, source)])
    if not reading.models:
        raise NothingToTrain(f"the code {NOTHING_TO_TRAIN}")
    if len(reading.models) > 1:
        places = ", ".join(str(model.where) for model in reading.models)
        raise NothingToTrain(
            f"the code builds {len(reading.models)} models (at {places}); send one at a time, "
            "or all of them as a notebook to POST /notebooks"
        )
    model = reading.models[0]
    experiment = _experiment(
        model,
        settings,
        name=name or model.name or "keras-code",
        description=description,
        tags=tags or [],
    )
    return Read([experiment], reading.skipped)


def read_notebook(notebook: Notebook, settings: Settings) -> Read:
    """Every model the notebook builds, compiles and fits, in order, tagged with its name."""
    reading = _reading([(cell.number, cell.source) for cell in notebook.code_cells])
    fitted = [model for model in reading.models if model.fit is not None]
    if not fitted:
        raise NothingToTrain(f"the notebook {notebook.name!r} {NOTHING_TO_TRAIN}")
    tag = notebook.name[:MAX_TAG_LENGTH].strip() or "notebook"
    experiments = []
    for number, model in enumerate(fitted, start=1):
        heading = notebook.heading_before(model.where.cell or 0)
        experiments.append(
            _experiment(
                model,
                settings,
                name=model.name or heading or f"{notebook.name} #{number}",
                description=heading,
                tags=[tag],
            )
        )
    skipped = list(reading.skipped) + [
        Skipped(model.where, f"{model.variable} = Sequential(...)", "compiled but never fitted")
        for model in reading.models
        if model.fit is None
    ]
    return Read(experiments, skipped)


def submit_read(
    read: Read, *, settings: Settings, db: Database, queue: JobQueue, client_id: str
) -> list[Experiment]:
    """Queue every experiment read (room for all of them is checked first)."""
    with db.scope() as session:
        check_queue_room(session, settings, client_id=client_id, adding=len(read.experiments))
    return [
        submit_experiment(
            draft=experiment.draft,
            settings=settings,
            db=db,
            queue=queue,
            client_id=client_id,
        ).experiment
        for experiment in read.experiments
    ]
