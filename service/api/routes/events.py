"""Server-Sent Events: every experiment's changes (`/events`) or one experiment's
(`/experiments/{id}/events`), resumable with `Last-Event-ID`."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from service.api.deps import DatabaseDep, ExperimentId, Reader, TokenFirstRoute
from service.db import repository
from service.db.session import Database
from service.events.feed import ChangeFeed
from service.events.stream import event_stream
from service.schemas.errors import error_responses

router = APIRouter(route_class=TokenFirstRoute, tags=["events"], dependencies=[Reader])

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
EVENTS_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {}},
        "description": "events `status`, `epoch` and `deleted`, each with an `id` and JSON data",
    }
}
LastEventId = Annotated[
    int | None,
    Header(alias="Last-Event-ID", ge=0, description="the id of the last event received"),
]
LastEventQuery = Annotated[
    int | None,
    Query(ge=0, description="the same as Last-Event-ID, for clients that cannot set headers"),
]


async def get_feed(request: Request) -> ChangeFeed:
    feed: ChangeFeed = request.app.state.change_feed
    return feed


FeedDep = Annotated[ChangeFeed, Depends(get_feed)]


def _stream(body: object) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=STREAM_HEADERS)  # type: ignore[arg-type]


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={**EVENTS_DOC, **error_responses(401, 422)},
)
async def all_events(
    feed: FeedDep,
    last_event_id: LastEventId = None,
    after: LastEventQuery = None,
) -> StreamingResponse:
    """Every experiment's changes from now on, or from after `Last-Event-ID`."""
    subscription = feed.subscribe()
    resume_from = last_event_id if last_event_id is not None else after
    try:
        if resume_from is None:
            # "Now" is the log's head, not the feed's cursor, which may be a poll behind.
            backlog, last_id = [], await feed.head()
        else:
            backlog, last_id = await feed.read(after=resume_from), resume_from
    except BaseException:
        feed.unsubscribe(subscription)
        raise
    return _stream(
        event_stream(feed, subscription, backlog, last_id=last_id, end_with_experiment=False)
    )


@router.get(
    "/experiments/{experiment_id}/events",
    response_class=StreamingResponse,
    responses={
        **EVENTS_DOC,
        204: {"description": "it has ended and nothing is left to send"},
        **error_responses(401, 404, 422),
    },
)
async def experiment_events(
    experiment_id: ExperimentId,
    feed: FeedDep,
    db: DatabaseDep,
    last_event_id: LastEventId = None,
    after: LastEventQuery = None,
) -> Response:
    """One experiment's changes from its creation, or from after `Last-Event-ID`; the stream
    ends after the change that ends the experiment."""
    subscription = feed.subscribe(experiment_id)
    resume_from = last_event_id if last_event_id is not None else after
    try:
        # The status first, then the backlog: a backlog read after a finished status holds
        # the change that finished it.
        finished = await asyncio.to_thread(_is_finished, db, experiment_id)
        backlog = await feed.read(after=resume_from or 0, experiment_id=experiment_id)
    except BaseException:
        feed.unsubscribe(subscription)
        raise
    if finished and not backlog:
        # 204 tells a browser's EventSource to stop reconnecting.
        feed.unsubscribe(subscription)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return _stream(
        event_stream(
            feed,
            subscription,
            backlog,
            last_id=resume_from or 0,
            end_with_experiment=True,
            final=finished,
        )
    )


def _is_finished(db: Database, experiment_id: str) -> bool:
    with db.scope() as session:
        return repository.get_experiment(session, experiment_id).status.is_finished
