"""Experiments: submit a spec, read it back, watch its history, cancel, delete."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal, TypedDict
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response, params, status

from service.api.deps import (
    ClientIdDep,
    DatabaseDep,
    EstimatesDep,
    ExperimentId,
    IdempotencyKey,
    Owner,
    OwnerQuery,
    QueueDep,
    Reader,
    ReaderDep,
    RuntimeDep,
    SettingsDep,
    TokenFirstRoute,
    Writer,
    WriterDep,
)
from service.db import pages, repository
from service.domain import Status
from service.domain.pages import Order, position
from service.errors import InvalidCursor
from service.schemas.errors import error_responses
from service.schemas.experiments import (
    EpochPublic,
    ExperimentCreate,
    ExperimentPublic,
    ExperimentsCompactPublic,
    ExperimentsPublic,
    ExperimentValidated,
    HistoryPublic,
    validated,
)
from service.schemas.insight import FindingPublic
from service.usecases import listing, ownership
from service.usecases.insight import diagnostics
from service.usecases.removal import remove_experiments
from service.usecases.reproduction import reproduction_of
from service.usecases.submission import submit_experiment, validate_experiment

log = logging.getLogger(__name__)
router = APIRouter(route_class=TokenFirstRoute, prefix="/experiments", tags=["experiments"])


class _OnOneExperiment(TypedDict):
    """Who may call a route on one experiment, and what it answers besides success."""

    dependencies: list[params.Depends]
    responses: dict[int | str, dict[str, Any]]


# No or a wrong token, no such experiment, a malformed id; and for a change, an experiment in a
# state that forbids it.
READ_ONE = _OnOneExperiment(dependencies=[Reader], responses=error_responses(401, 404, 422))
CHANGE_ONE = _OnOneExperiment(
    dependencies=[Writer, Owner], responses=error_responses(401, 403, 404, 409, 422)
)


@router.post(
    "",
    response_model=ExperimentPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Writer],
    responses=error_responses(401, 409, 413, 422, 429),
)
def create_experiment(
    spec_in: ExperimentCreate,
    settings: SettingsDep,
    db: DatabaseDep,
    queue: QueueDep,
    client: ClientIdDep,
    estimates: EstimatesDep,
    idempotency_key: IdempotencyKey = None,
) -> ExperimentPublic:
    """Validate the spec, build it once for its summary, and queue its training (202 even
    when the queue is down: the experiment is stored, and delivered once the queue is back)."""
    submission = submit_experiment(
        draft=spec_in.draft(),
        settings=settings,
        db=db,
        queue=queue,
        client_id=client,
        idempotency_key=idempotency_key,
    )
    with db.scope() as session:  # where it stands in the queue now, not at a later GET
        estimate = estimates.get(session).get(submission.experiment.id)
    return ExperimentPublic.of(submission.experiment, estimate=estimate)


@router.post(
    "/validate",
    response_model=ExperimentValidated,
    dependencies=[Writer],
    responses=error_responses(401, 413, 422),
)
def validate_spec(spec_in: ExperimentCreate, settings: SettingsDep) -> ExperimentValidated:
    """Check a spec exactly as a submission would (limits, Keras dry run) without queueing it."""
    spec = spec_in.draft().spec
    return validated(spec, validate_experiment(spec, settings))


@router.get(
    "",
    response_model=ExperimentsPublic | ExperimentsCompactPublic,
    dependencies=[Reader],
    responses={
        200: {
            "content": {"text/csv": {}},
            "description": "a page of experiments; the compact view as CSV with format=csv",
            "headers": {
                "Link": {
                    "description": 'the next page, `<URL>; rel="next"`; absent on the last',
                    "schema": {"type": "string"},
                }
            },
        },
        **error_responses(401, 422),
    },
)
def list_experiments(
    request: Request,
    response: Response,
    caller: ReaderDep,
    db: DatabaseDep,
    settings: SettingsDep,
    estimates: EstimatesDep,
    status_filter: Annotated[Status | None, Query(alias="status")] = None,
    tag: Annotated[
        list[str] | None, Query(max_length=10, description="only experiments with every tag given")
    ] = None,
    order: Annotated[
        Order,
        Query(description="created, -created (newest first), test_accuracy, -test_accuracy"),
    ] = "-created",
    view: Annotated[
        Literal["full", "compact"],
        Query(description="compact: scores per run, no spec or layers (the overfitting table)"),
    ] = "full",
    format: Annotated[
        Literal["json", "csv"] | None,
        Query(description="csv: the compact view as CSV (also Accept: text/csv)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=400,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="the previous page's next_cursor (or its Link rel=next): the page "
            "after it, as fast at any depth",
        ),
    ] = None,
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=1_000_000,
            description="rows to skip; kept for older clients, slower the deeper (use cursor)",
        ),
    ] = 0,
    owner: OwnerQuery = None,
    mine: Annotated[
        bool,
        Query(description="the caller's own (as ?owner=me)"),
    ] = False,
) -> ExperimentsPublic | ExperimentsCompactPublic | Response:
    """A page of experiments, newest first unless `order` says otherwise. The answer's
    `next_cursor` (and its `Link: <...>; rel="next"` header, which CSV answers carry too) leads
    to the next page."""
    after = position(cursor, order) if cursor is not None else None
    if after and offset:
        raise InvalidCursor("give cursor or offset, not both: a cursor already says where")
    owners = ownership.list_filter(
        caller, "me" if mine else owner, class_reads=settings.class_reads
    )
    with db.scope() as session:
        if format == "csv" or (format is None and "text/csv" in request.headers.get("accept", "")):
            compact = pages.compact_page(
                session,
                status=status_filter,
                tags=tag or (),
                owner=owners,
                order=order,
                limit=limit,
                offset=offset,
                after=after,
            )
            csv = listing.as_csv(listing.overviews(session, compact.items))
            links = _next_link(request, compact.next.cursor() if compact.next else None)
            return Response(csv, media_type="text/csv; charset=utf-8", headers=links)
        page = pages.list_experiments(
            session,
            status=status_filter,
            tags=tag or (),
            owner=owners,
            order=order,
            limit=limit,
            offset=offset,
            after=after,
        )
        following = page.next.cursor() if page.next else None
        response.headers.update(_next_link(request, following))
        if view == "compact":
            rows = listing.overviews(session, page.items)
            return ExperimentsCompactPublic(
                data=rows, count=page.count, limit=limit, offset=offset, next_cursor=following
            )
        kept = estimates.of(session, page.items)
        return ExperimentsPublic(
            data=[ExperimentPublic.of(item, estimate=kept.get(item.id)) for item in page.items],
            count=page.count,
            limit=limit,
            offset=offset,
            next_cursor=following,
        )


def _next_link(request: Request, following: str | None) -> dict[str, str]:
    """RFC 8288's Link to the next page: this request's URL with the cursor in place of any
    offset."""
    if following is None:
        return {}
    kept = [
        (key, value)
        for key, value in request.query_params.multi_items()
        if key not in ("cursor", "offset")
    ]
    query = urlencode([*kept, ("cursor", following)])
    return {"Link": f'<{request.url.path}?{query}>; rel="next"'}


@router.get("/{experiment_id}", response_model=ExperimentPublic, **READ_ONE)
def read_experiment(
    experiment_id: ExperimentId, db: DatabaseDep, estimates: EstimatesDep
) -> ExperimentPublic:
    with db.scope() as session:
        experiment = repository.get_experiment(session, experiment_id)
        return ExperimentPublic.of(
            experiment,
            repository.attempts(session, experiment_id),
            reproduction=reproduction_of(session, experiment),
            diagnostics=[FindingPublic.of(found) for found in diagnostics(session, experiment_id)],
            estimate=estimates.of(session, [experiment]).get(experiment_id),
        )


@router.get("/{experiment_id}/history", response_model=HistoryPublic, **READ_ONE)
def read_history(experiment_id: ExperimentId, db: DatabaseDep) -> HistoryPublic:
    with db.scope() as session:
        current, epochs = repository.history(session, experiment_id)
    return HistoryPublic(
        experiment_id=experiment_id, status=current, epochs=[EpochPublic.of(e) for e in epochs]
    )


@router.post(
    "/{experiment_id}/cancel",
    response_model=ExperimentPublic,
    status_code=status.HTTP_202_ACCEPTED,
    **CHANGE_ONE,
)
def cancel_experiment(
    experiment_id: ExperimentId, db: DatabaseDep, caller: WriterDep
) -> ExperimentPublic:
    """A queued experiment never starts; a running one stops within an epoch."""
    with db.scope() as session:
        cancelled = repository.request_cancel(session, experiment_id)
    log.info("experiment %s cancel requested by %s", experiment_id, caller.label)
    return ExperimentPublic.of(cancelled)


@router.delete("/{experiment_id}", status_code=status.HTTP_204_NO_CONTENT, **CHANGE_ONE)
def delete_experiment(
    experiment_id: ExperimentId, runtime: RuntimeDep, caller: WriterDep
) -> Response:
    """Remove a finished or cancelled experiment, its history and its model files."""
    remove_experiments(
        experiment_ids=[experiment_id],
        db=runtime.db,
        predictions=runtime.predictions,
        store=runtime.store,
    )
    log.info("experiment %s deleted by %s", experiment_id, caller.label)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
