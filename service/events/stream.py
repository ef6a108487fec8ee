"""Server-Sent Events from the change feed: the backlog a client missed, then live changes.

Each event's `id` is its change's id, so ids grow along every stream and mean the same in every
API process and after restarts; a client that reconnects with `Last-Event-ID` gets exactly the
changes after it. A comment line every KEEPALIVE_SECONDS keeps proxies from closing idle streams.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable

from service.domain import Change
from service.events.feed import ChangeFeed, End, Subscription

KEEPALIVE_SECONDS = 15.0
# How long a browser waits before it reconnects after the stream breaks.
RETRY_MILLISECONDS = 2000


def format_event(change: Change) -> str:
    body = {"experiment_id": change.experiment_id, **change.data}
    return f"id: {change.id}\nevent: {change.kind}\ndata: {json.dumps(body)}\n\n"


async def event_stream(
    feed: ChangeFeed,
    subscription: Subscription,
    backlog: Iterable[Change],
    *,
    last_id: int,
    end_with_experiment: bool,
    final: bool = False,
    keepalive_seconds: float = KEEPALIVE_SECONDS,
) -> AsyncIterator[str]:
    """Yield the backlog, then live changes, skipping any id already sent.

    A stream for one experiment ends after the change that ends the experiment (or after the
    backlog when it is `final`: the experiment had ended when the stream began); every stream
    ends when the feed ends it.
    """
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        for change in backlog:
            yield format_event(change)
            last_id = change.id
            if end_with_experiment and change.ends_experiment:
                return
        if final:
            return
        while True:
            try:
                item = await asyncio.wait_for(subscription.queue.get(), keepalive_seconds)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if isinstance(item, End):
                return
            if item.id <= last_id:  # already in the backlog
                continue
            yield format_event(item)
            last_id = item.id
            if end_with_experiment and item.ends_experiment:
                return
    finally:
        feed.unsubscribe(subscription)
