"""Submitting an experiment: the configured limits, the dry run, the row, the delivery."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import admission, people
from service.db.clock import database_now
from service.db.session import Database
from service.domain import Experiment, ExperimentDraft, owner_of
from service.errors import IdempotencyMismatch, QueueFull, SpecRejected, TrainingTimeUsed
from service.jobs.queue import JobQueue
from service.maintenance import disk
from service.spec.architecture import ArchitectureError, infer_architecture
from service.spec.cost import TrainingCost, training_cost
from service.spec.experiment import ExperimentSpec
from service.spec.fingerprint import normalised_spec, spec_hash
from service.spec.layers import Layer as LayerSpec

log = logging.getLogger(__name__)


def check_limits(spec: ExperimentSpec, settings: Settings) -> TrainingCost:
    """The caps a user meets before any work starts, each named in its 422; the net's cost."""
    problems = size_problems(
        settings,
        layer_count=len(spec.layers),
        epochs=spec.fit.epochs,
        params=spec.parameter_count,
    )
    cost = training_cost(spec)
    if cost.memory_bytes > settings.max_activation_bytes:
        problems.append(
            {
                "loc": ["body", "fit", "batch_size"],
                "msg": f"training needs about {_megabytes(cost.memory_bytes)} at its peak "
                f"({_megabytes(cost.activation_bytes_per_image)} of activations per image, "
                f"{_megabytes(cost.activation_bytes_per_batch)} for a batch of "
                f"{cost.batch_size}, beside the training set and the weights), over the limit "
                f"of {_megabytes(settings.max_activation_bytes)} (MAX_ACTIVATION_BYTES); use a "
                "smaller batch_size, or fewer units or filters in the large layers",
                "type": "limit",
            }
        )
    if problems:
        raise SpecRejected("; ".join(problem["msg"] for problem in problems), details=problems)
    return cost


def size_problems(
    settings: Settings, *, layer_count: int | None, epochs: int | None, params: int | None
) -> list[dict[str, Any]]:
    """MAX_LAYERS, MAX_EPOCHS and MAX_PARAMS, each over its limit named (None: not known)."""
    problems: list[dict[str, Any]] = []
    if layer_count is not None and layer_count > settings.max_layers:
        problems.append(
            {
                "loc": ["body", "layers"],
                "msg": f"{layer_count} layers is over the limit of {settings.max_layers} "
                "(MAX_LAYERS)",
                "type": "limit",
            }
        )
    if epochs is not None and epochs > settings.max_epochs:
        problems.append(
            {
                "loc": ["body", "fit", "epochs"],
                "msg": f"{epochs} epochs is over the limit of {settings.max_epochs} (MAX_EPOCHS)",
                "type": "limit",
            }
        )
    if params is not None and params > settings.max_params:
        problems.append(
            {
                "loc": ["body", "layers"],
                "msg": f"the net has {params:,} parameters, over the limit of "
                f"{settings.max_params:,} (MAX_PARAMS); use fewer or smaller layers",
                "type": "limit",
            }
        )
    return problems


_LAYER_LIST: TypeAdapter[list[LayerSpec]] = TypeAdapter(list[LayerSpec])


def limits_of_invalid_body(body: Any, settings: Settings) -> list[dict[str, Any]]:
    """The size limits a body that failed validation breaks as well, so that one answer names
    every problem (a missing name and compile, and too many parameters): its layers, when they
    are valid on their own, against MAX_LAYERS and MAX_PARAMS; its fit.epochs against
    MAX_EPOCHS."""
    if not isinstance(body, dict):
        return []
    layers, fit = body.get("layers"), body.get("fit")
    params = None
    if isinstance(layers, list):
        try:
            params = sum(
                layer.params for layer in infer_architecture(_LAYER_LIST.validate_python(layers))
            )
        except (ValidationError, ArchitectureError):
            params = None
    epochs = fit.get("epochs") if isinstance(fit, dict) else None
    return size_problems(
        settings,
        layer_count=len(layers) if isinstance(layers, list) else None,
        epochs=epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None,
        params=params,
    )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def queue_cap(settings: Settings, client_id: str) -> tuple[int, str]:
    """How many queued experiments the client may have, and the setting that says so: a
    person's own cap, else the per-client (address or API_TOKEN) one."""
    if owner_of(client_id) is not None:
        return settings.max_queued_per_person, "MAX_QUEUED_PER_PERSON"
    return settings.max_queued_per_client, "MAX_QUEUED_PER_CLIENT"


def check_queue_room(
    session: Session, settings: Settings, *, client_id: str, adding: int = 1
) -> None:
    """Refuse (429) what would put the client over their queue cap, or a person over their
    training minutes today."""
    check_training_day(session, settings, client_id=client_id)
    queued = admission.count_queued(session, client_id=client_id)
    cap, name = queue_cap(settings, client_id)
    if queued + adding > cap:
        raise queue_full(queued, cap, name)


def check_training_day(session: Session, settings: Settings, *, client_id: str) -> None:
    """Refuse (429) a person's submission once they trained MAX_TRAINING_MINUTES_PER_DAY
    today (UTC), saying when the day resets."""
    limit = settings.max_training_minutes_per_day
    if not limit or owner_of(client_id) is None:
        return
    now = database_now(session)
    used = people.training_seconds_since(
        session, people.start_of_day(now), now=now, client_id=client_id
    ).get(client_id, 0.0)
    if used >= limit * 60:
        resets = people.next_day(now)
        raise TrainingTimeUsed(
            f"you trained {used / 60:.0f} minutes today, the daily limit "
            f"(MAX_TRAINING_MINUTES_PER_DAY) is {limit:g}; it resets at "
            f"{resets:%Y-%m-%d %H:%M} UTC, in {(resets - now).total_seconds() / 3600:.1f} h"
        )


def queue_full(queued: int, limit: int, setting: str = "MAX_QUEUED_PER_CLIENT") -> QueueFull:
    """The 429 of a client at its cap, whichever way the cap was met."""
    return QueueFull(
        f"you already have {queued} experiments queued, the limit ({setting}) is {limit}; "
        "wait for some to start or cancel them"
    )


def validate_experiment(spec: ExperimentSpec, settings: Settings) -> dict[str, Any]:
    """Everything a submission checks before it stores anything: the limits, then the Keras
    dry run. Returns the summary (with the memory and time estimate); raises what a
    submission would raise for the same spec."""
    cost = check_limits(spec, settings)
    from service.ml.build import dry_run  # TensorFlow loads on first use, not at import

    return {**dry_run(spec), "estimate": cost.as_summary()}


@dataclass(frozen=True)
class Submission:
    experiment: Experiment
    replayed: bool
    """True when the Idempotency-Key was used before: `experiment` is the one created then."""


def request_digest(draft: ExperimentDraft) -> str:
    """What an Idempotency-Key is bound to: the request's content, not its formatting."""
    content = {
        **normalised_spec(draft.spec),
        "name": draft.name,
        "description": draft.description,
        "tags": list(draft.tags),
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(earlier: admission.Admission, digest: str | None, key: str) -> Submission:
    assert earlier.experiment is not None
    if earlier.request_digest != digest:
        raise IdempotencyMismatch(
            f"Idempotency-Key {key!r} was used for a different request (experiment "
            f"{earlier.experiment.id}); send a new key for a new experiment, or the same body "
            "to get that experiment back"
        )
    return Submission(earlier.experiment, replayed=True)


def _new_experiment(
    draft: ExperimentDraft,
    settings: Settings,
    summary: dict[str, Any],
    *,
    client_id: str,
    rerun_of: str | None,
) -> admission.NewExperiment:
    return admission.NewExperiment(
        name=draft.name,
        description=draft.description,
        spec=normalised_spec(draft.spec),
        summary=summary,
        client_id=client_id,
        max_attempts=settings.max_attempts,
        spec_hash=spec_hash(draft.spec),
        seed=draft.spec.fit.seed,
        rerun_of=rerun_of,
        tags=draft.tags,
    )


def submit_experiment(
    *,
    draft: ExperimentDraft,
    settings: Settings,
    db: Database,
    queue: JobQueue,
    client_id: str,
    idempotency_key: str | None = None,
    rerun_of: str | None = None,
) -> Submission:
    """Store the experiment, then hand it to the queue; with a key seen before, the first one;
    `rerun_of` names the experiment it repeats.

    Once stored, the experiment is accepted whatever the queue does: when the broker is down
    the row is marked undelivered and the sweep delivers it once the broker is back.
    """
    digest = request_digest(draft) if idempotency_key is not None else None
    if idempotency_key is not None:
        with db.scope() as session:
            earlier = admission.find_by_idempotency_key(
                session, client_id=client_id, idempotency_key=idempotency_key
            )
        if earlier is not None:  # before the dry run: a retry costs a query, not a build
            return _replay(earlier, digest, idempotency_key)
    disk.ensure_room(settings)
    with db.scope() as session:
        check_training_day(session, settings, client_id=client_id)
    summary = validate_experiment(draft.spec, settings)
    new = _new_experiment(draft, settings, summary, client_id=client_id, rerun_of=rerun_of)
    cap, setting = queue_cap(settings, client_id)
    admitted = admission.admit(
        db,
        new,
        max_queued=cap,
        idempotency_key=idempotency_key,
        request_digest=digest,
    )
    if admitted.experiment is None:
        # Full when the row was to go in: at the cap, however many were queued when checked.
        raise queue_full(cap, cap, setting)
    if admitted.replayed:
        assert idempotency_key is not None
        return _replay(admitted, digest, idempotency_key)
    deliver(db=db, queue=queue, experiment_id=admitted.experiment.id)
    experiment = admitted.experiment
    log.info(
        "experiment %s %r queued: %d epochs, %s parameters, %s",
        experiment.id,
        experiment.name,
        draft.spec.fit.epochs,
        f"{summary.get('total_params', 0):,}",
        f"by {experiment.owner}" if experiment.owner else f"client {client_id}",
    )
    return Submission(experiment, replayed=False)


def deliver(*, db: Database, queue: JobQueue, experiment_id: str) -> None:
    """Hand a stored experiment to the queue, after its commit (a worker must find the row it
    is told about). A broker that fails is logged, not raised: the row stays undelivered and
    the sweep delivers it. If this process dies right here, the sweep finds it missing from
    the queue all the same."""
    try:
        queue.enqueue(experiment_id)
    except Exception as error:  # any broker failure: the experiment is safe in the database
        log.warning(
            "queue unavailable (%s: %s): experiment %s is stored and will be delivered by the "
            "sweep",
            type(error).__name__,
            error,
            experiment_id,
        )
        try:
            with db.scope() as session:
                admission.mark_undelivered(session, experiment_id)
        except Exception:  # the sweep still finds it missing from the queue, only later
            log.exception("could not mark experiment %s undelivered", experiment_id)
