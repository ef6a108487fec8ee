"""Experiment bodies: the create request and the responses (`*Public`) built from domain objects."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, cast

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from service.domain import (
    MAX_TAG_LENGTH,
    MAX_TAGS,
    Attempt,
    EpochRecord,
    Experiment,
    ExperimentDraft,
    Reproduction,
    Status,
)
from service.estimates import Estimate
from service.overview import RunOverview
from service.schemas.insight import FindingPublic
from service.schemas.openapi import NOT_NULL, NULL
from service.schemas.reproduction import ReproductionPublic
from service.spec.experiment import ExperimentSpec
from service.spec.from_keras_json import KerasJsonError, is_serialized, keras_model, keras_optimizer
from service.spec.suggestions import spec_error

# A character Python's str.strip() keeps, spelled out: JSON Schema's `\S` (ECMA's) counts the
# separators U+001C-U+001F as text and U+FEFF as a space, where Python says the opposite, so a
# client generated from `\S` sent names the service then refused as blank.
NOT_BLANK = (
    r"[^\t\n\v\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)


def _not_blank(name: str) -> str:
    if not name.strip():
        # The type pydantic's pattern gave before; the message is ours, not a regex.
        raise spec_error("string_pattern_mismatch", "give the experiment a name, not only spaces")
    return name


def _tags(tags: list[str]) -> list[str]:
    cleaned = list(dict.fromkeys(tag.strip() for tag in tags))  # each once, in order given
    for tag in cleaned:
        if not tag or len(tag) > MAX_TAG_LENGTH:
            raise spec_error(
                "tag", f"a tag is 1 to {MAX_TAG_LENGTH} characters, like 'class-3' or 'dropout'"
            )
    if len(cleaned) > MAX_TAGS:
        raise spec_error("tags", f"give at most {MAX_TAGS} tags; got {len(cleaned)}")
    return cleaned


def _layers_or_model(schema: JsonDict, model: type[BaseModel]) -> None:
    """What `_keras_json` checks: layers, or a model (Keras's to_json()) in their place."""
    # The spec's own (its standard bounds), which this replaces in the subclass's config.
    parent = cast(
        Callable[[JsonDict, type[BaseModel]], None],
        ExperimentSpec.model_config.get("json_schema_extra"),
    )
    parent(schema, model)
    required = schema["required"]
    assert isinstance(required, list)
    required.remove("layers")
    schema["oneOf"] = [
        {"required": ["layers"], "properties": {"model": NULL}},
        {"required": ["model"], "properties": {"model": NOT_NULL}, "not": {"required": ["layers"]}},
    ]


class ExperimentCreate(ExperimentSpec):
    """POST /experiments: the spec plus what a person calls it and the tags that group it."""

    model_config = ConfigDict(json_schema_extra=_layers_or_model)

    # The schema states what _not_blank and _tags check, in JSON Schema's words.
    name: Annotated[str, AfterValidator(_not_blank)] = Field(
        min_length=1, max_length=200, json_schema_extra={"pattern": NOT_BLANK}
    )
    description: str | None = Field(default=None, max_length=2000)
    tags: Annotated[list[str], AfterValidator(_tags)] = Field(
        default_factory=list,
        description=f"up to {MAX_TAGS} short labels (a class, a question); "
        "GET /experiments?tag=... lists the experiments that carry them",
        json_schema_extra={
            "maxItems": MAX_TAGS,
            "items": {"type": "string", "pattern": NOT_BLANK, "maxLength": MAX_TAG_LENGTH},
        },
    )
    model: dict[str, Any] | str | None = Field(
        default=None,
        exclude=True,
        description="Keras's model.to_json() of a Sequential (an object or its string), in "
        "place of layers; its compile_config stands for compile when compile is left out",
    )

    @model_validator(mode="before")
    @classmethod
    def _keras_json(cls, data: Any) -> Any:
        """Keras's own JSON (to_json(), optimizers.serialize()) read into the spec's."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        try:
            if data.get("model") is not None:
                if "layers" in data:
                    raise spec_error(
                        "keras_json", "give layers or model (Keras's to_json()), not both"
                    )
                data["layers"], compiled = keras_model(data.pop("model"))
                if "compile" not in data and compiled is not None:
                    data["compile"] = compiled
            compiled = data.get("compile")
            if isinstance(compiled, dict) and is_serialized(compiled.get("optimizer")):
                data["compile"] = {**compiled, "optimizer": keras_optimizer(compiled["optimizer"])}
        except KerasJsonError as error:
            raise spec_error("keras_json", str(error)) from None
        return data

    def draft(self) -> ExperimentDraft:
        """The body as the domain takes it: the spec's fields (the one place that says which
        they are) apart from what describes the run. Already validated: nothing is checked
        twice."""
        spec = ExperimentSpec.model_construct(
            **{field: getattr(self, field) for field in ExperimentSpec.model_fields}
        )
        return ExperimentDraft(self.name, self.description, spec, tuple(self.tags))


class LayerSummary(BaseModel):
    name: str
    type: str
    output_shape: list[int | None]
    params: int


class EstimatePublic(BaseModel):
    """What training will take, roughly (`note` says how rough), from the layer shapes."""

    activation_bytes_per_image: int
    activation_bytes_per_batch: int = Field(
        description="what a batch's images cost at a training step's peak"
    )
    memory_bytes: int = Field(
        description="the training's peak above the worker's baseline: a batch, the weights and "
        "their state, the training set's copies and a fixed workspace; capped by "
        "MAX_ACTIVATION_BYTES"
    )
    flops_per_image: int = Field(description="of the forward pass")
    seconds_per_epoch: float
    note: str


class SummaryPublic(BaseModel):
    """What `model.summary()` prints, computed by really building the Keras model, and an
    estimate of the memory and time its training takes (absent on older experiments)."""

    layers: list[LayerSummary]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    estimate: EstimatePublic | None = None


class ExperimentValidated(BaseModel):
    """POST /experiments/validate: the spec as it would be trained, and its summary."""

    spec: ExperimentSpec = Field(description="the spec with every Keras default filled in")
    summary: SummaryPublic


def validated(spec: ExperimentSpec, summary: dict[str, Any]) -> ExperimentValidated:
    """A dry run's answer: the spec (a draft's, without what names the run) and the summary."""
    return ExperimentValidated(spec=spec, summary=SummaryPublic.model_validate(summary))


class AttemptPublic(BaseModel):
    number: int
    worker: str | None
    start_epoch: int = Field(description="epochs already done when this attempt started")
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptPublic:
        return cls.model_validate(attempt, from_attributes=True)


class ExperimentPublic(BaseModel):
    id: str
    name: str
    description: str | None
    status: Status
    spec: ExperimentSpec
    summary: SummaryPublic | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    test_loss: float | None
    test_accuracy: float | None
    error: str | None
    epochs_done: int
    attempt: int
    max_attempts: int
    cancel_requested: bool
    worker: str | None
    versions: dict[str, str] = Field(
        description="software that trained it (python, tensorflow, keras, numpy)"
    )
    spec_hash: str | None = Field(
        description="sha256 of the normalised spec at submission: equal hashes, same training"
    )
    seed: int | None
    rerun_of: str | None = Field(description="the experiment this one repeats")
    model_available: bool
    aliases: list[str]
    tags: list[str]
    queue_position: int | None = Field(
        default=None,
        description="queued: 1 for the next to start, in the order fair share starts them",
    )
    estimated_start: datetime | None = Field(
        default=None,
        description="queued: when a worker slot should take it, from the running experiments' "
        "time left and, per job ahead, its epochs at the median pace of recent epochs plus "
        "the median time recent jobs took beyond their epochs (build, evaluate, save)",
    )
    estimated_seconds_left: float | None = Field(
        default=None,
        description="running: epochs to go times its own mean seconds per epoch so far",
    )
    attempts: list[AttemptPublic] | None = None
    diagnostics: list[FindingPublic] | None = Field(
        default=None,
        description="what the history and layer health say went wrong (GET of one experiment)",
    )
    reproduction: ReproductionPublic | None = Field(
        default=None, description="a rerun's comparison with its original (GET by id only)"
    )
    study_id: str | None = Field(default=None, description="the study this is a trial of")
    trial_params: dict[str, Any] | None = Field(
        default=None, description="what the study varied for this trial, by path in the spec"
    )
    owner: str | None = Field(
        default=None, description="the person whose work it is; null: made before the class"
    )

    @classmethod
    def of(
        cls,
        experiment: Experiment,
        attempts: list[Attempt] | None = None,
        *,
        reproduction: Reproduction | None = None,
        diagnostics: list[FindingPublic] | None = None,
        estimate: Estimate | None = None,
    ) -> ExperimentPublic:
        estimate = estimate or Estimate()
        left = estimate.seconds_left
        return cls(
            id=experiment.id,
            name=experiment.name,
            description=experiment.description,
            status=experiment.status,
            spec=ExperimentSpec.model_validate(experiment.spec),
            summary=SummaryPublic.model_validate(experiment.summary)
            if experiment.summary
            else None,
            created_at=experiment.created_at,
            started_at=experiment.started_at,
            finished_at=experiment.finished_at,
            test_loss=experiment.test_loss,
            test_accuracy=experiment.test_accuracy,
            error=experiment.error,
            epochs_done=experiment.epochs_done,
            attempt=experiment.attempt,
            max_attempts=experiment.max_attempts,
            cancel_requested=experiment.cancel_requested,
            worker=experiment.worker,
            versions=experiment.versions,
            spec_hash=experiment.spec_hash,
            seed=experiment.seed,
            rerun_of=experiment.rerun_of,
            model_available=experiment.status is Status.SUCCEEDED and bool(experiment.model_uri),
            aliases=list(experiment.aliases),
            tags=list(experiment.tags),
            queue_position=estimate.queue_position,
            estimated_start=estimate.estimated_start,
            estimated_seconds_left=round(left, 1) if left is not None else None,
            attempts=[AttemptPublic.of(a) for a in attempts] if attempts is not None else None,
            reproduction=ReproductionPublic.of(reproduction) if reproduction else None,
            diagnostics=diagnostics,
            study_id=experiment.study_id,
            trial_params=experiment.trial_params,
            owner=experiment.owner,
        )


class _Page(BaseModel):
    count: int = Field(description="experiments matching the filter, over all pages")
    limit: int
    offset: int
    next_cursor: str | None = Field(
        default=None,
        description="pass as `cursor` (same filters and order) for the next page; "
        "null on the last page",
    )


class ExperimentsPublic(_Page):
    data: list[ExperimentPublic]


class ExperimentsCompactPublic(_Page):
    """`view=compact`: one row per run (scores, best epoch, pace), no spec or layers."""

    data: list[RunOverview]


def float32(value: float | None) -> float | None:
    """A float32 (Keras keeps the learning rate in one) written to the digits it has: 0.01,
    not 0.009999999776482582, the same float32 read back as a float64."""
    if value is None or not math.isfinite(value):
        return value
    return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))


class EpochPublic(BaseModel):
    epoch: int
    loss: float | None
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    learning_rate: float | None = Field(
        default=None,
        description="the optimizer's learning rate at the end of the epoch (a float32, written "
        "to the digits it has: 0.01)",
    )

    @classmethod
    def of(cls, record: EpochRecord) -> EpochPublic:
        loss = record.loss if record.loss == record.loss else None  # NaN is not JSON
        return cls(
            epoch=record.epoch,
            loss=loss,
            accuracy=record.accuracy,
            val_loss=record.val_loss,
            val_accuracy=record.val_accuracy,
            seconds=record.seconds,
            learning_rate=float32(record.learning_rate),
        )


class HistoryPublic(BaseModel):
    experiment_id: str
    status: Status
    epochs: list[EpochPublic]


class DiskPublic(BaseModel):
    store_bytes: int = Field(description="bytes in the model store: models and checkpoints")
    database_bytes: int = Field(description="bytes the database takes on disk")
    free_bytes: int | None = Field(
        description="free bytes on the fullest disk the service writes to; null when the store "
        "and the database are both remote"
    )
    min_free_bytes: int = Field(description="MIN_FREE_DISK_BYTES: below it, trainings get 507")
    low: bool = Field(description="true while new trainings are refused for lack of disk")


class HealthPublic(BaseModel):
    status: str = Field(description="ok, or degraded when a dependency is unavailable")
    database: str
    queue: str
    data: str
    version: str
    checks: dict[str, Any] = Field(default_factory=dict)
    disk: DiskPublic | None = None
