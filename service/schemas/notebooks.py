"""Keras code and notebooks read into experiments: what was read, what was skipped, and (unless
it was a dry run) the experiments queued."""

from __future__ import annotations

from pydantic import BaseModel, Field

from service.domain import Experiment
from service.schemas.experiments import ExperimentPublic, SummaryPublic
from service.spec.experiment import ExperimentSpec
from service.spec.from_code.results import Skipped
from service.usecases.reading import Read, ReadExperiment


class CodeIn(BaseModel):
    """POST /experiments/from-code as JSON (the code may also be the whole text/x-python body)."""

    code: str = Field(min_length=1, description="Keras code: a notebook cell or a script")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    tags: list[str] = Field(default_factory=list)


class SkippedPublic(BaseModel):
    """A statement or argument read and left out (plotting, summary, a layer's name)."""

    cell: int | None = Field(default=None, description="the notebook cell, counting from 1")
    line: int
    column: int
    code: str
    why: str

    @classmethod
    def of(cls, skipped: Skipped) -> SkippedPublic:
        return cls(**skipped.as_dict())


class ReadExperimentPublic(BaseModel):
    """One model read from the source: the spec it gives, its summary, the experiment queued."""

    name: str
    description: str | None
    tags: list[str]
    cell: int | None = Field(default=None, description="the cell that builds the Sequential")
    line: int
    spec: ExperimentSpec = Field(description="the spec with every Keras default filled in")
    summary: SummaryPublic
    notes: list[str] = Field(description="what was assumed in reading it")
    experiment: ExperimentPublic | None = Field(description="null on a dry run")

    @classmethod
    def of(cls, read: ReadExperiment, experiment: Experiment | None) -> ReadExperimentPublic:
        draft = read.draft
        return cls(
            name=draft.name,
            description=draft.description,
            tags=list(draft.tags),
            cell=read.where.cell,
            line=read.where.line,
            spec=draft.spec,
            summary=SummaryPublic.model_validate(read.summary),
            notes=read.notes,
            experiment=ExperimentPublic.of(experiment) if experiment is not None else None,
        )


class CodeReadPublic(BaseModel):
    dry_run: bool
    experiments: list[ReadExperimentPublic]
    skipped: list[SkippedPublic]

    @classmethod
    def of(cls, read: Read, queued: list[Experiment] | None) -> CodeReadPublic:
        made: list[Experiment | None] = list(queued) if queued else [None] * len(read.experiments)
        return cls(
            dry_run=queued is None,
            experiments=[
                ReadExperimentPublic.of(item, experiment)
                for item, experiment in zip(read.experiments, made, strict=True)
            ],
            skipped=[SkippedPublic.of(item) for item in read.skipped],
        )


class NotebookReadPublic(CodeReadPublic):
    notebook: str = Field(description="the notebook's name: the tag of its experiments")
