"""Submitting an experiment: the configured limits, the dry run, the row, the delivery."""

from __future__ import annotations

import logging
from typing import Any

from service.config import Settings
from service.db import repository
from service.db.session import Database
from service.domain import Experiment
from service.errors import QueueFull, SpecRejected
from service.jobs.queue import JobQueue
from service.schemas.experiments import ExperimentCreate

log = logging.getLogger(__name__)


def check_limits(spec: ExperimentCreate, settings: Settings) -> None:
    """The caps a user meets before any work starts, each named in its 422."""
    problems: list[dict[str, Any]] = []
    if len(spec.layers) > settings.max_layers:
        problems.append(
            {
                "loc": ["body", "layers"],
                "msg": f"{len(spec.layers)} layers is over the limit of {settings.max_layers} "
                "(MAX_LAYERS)",
                "type": "limit",
            }
        )
    if spec.fit.epochs > settings.max_epochs:
        problems.append(
            {
                "loc": ["body", "fit", "epochs"],
                "msg": f"{spec.fit.epochs} epochs is over the limit of {settings.max_epochs} "
                "(MAX_EPOCHS)",
                "type": "limit",
            }
        )
    params = spec.parameter_count
    if params > settings.max_params:
        problems.append(
            {
                "loc": ["body", "layers"],
                "msg": f"the net has {params:,} parameters, over the limit of "
                f"{settings.max_params:,} (MAX_PARAMS); use fewer or smaller layers",
                "type": "limit",
            }
        )
    if problems:
        raise SpecRejected("; ".join(problem["msg"] for problem in problems), details=problems)


def submit_experiment(
    *,
    spec_in: ExperimentCreate,
    settings: Settings,
    db: Database,
    queue: JobQueue,
    client_id: str,
) -> Experiment:
    check_limits(spec_in, settings)
    from service.ml.build import dry_run  # TensorFlow loads on first use, not at import

    summary = dry_run(spec_in)
    spec = spec_in.model_dump(mode="json", exclude=spec_in.NOT_SPEC)
    with db.scope() as session:
        queued = repository.count_queued(session, client_id=client_id)
        if queued >= settings.max_queued_per_client:
            raise QueueFull(
                f"you already have {queued} experiments queued, the limit "
                f"(MAX_QUEUED_PER_CLIENT) is {settings.max_queued_per_client}; wait for some "
                "to start or cancel them"
            )
        experiment = repository.create_experiment(
            session,
            name=spec_in.name,
            description=spec_in.description,
            spec=spec,
            summary=summary,
            client_id=client_id,
            max_attempts=settings.max_attempts,
            tags=spec_in.tags,
        )
    # After the commit: a worker must find the row it is told about. If this process dies
    # right here, the sweep re-delivers the orphaned row.
    queue.enqueue(experiment.id)
    log.info(
        "experiment %s %r queued: %d epochs, %s parameters, client %s",
        experiment.id,
        experiment.name,
        spec_in.fit.epochs,
        f"{summary.get('total_params', 0):,}",
        client_id,
    )
    return experiment
