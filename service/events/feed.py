"""The change feed: one asyncio task per API process polls the database's change log and
hands each new change to the queues of the streams that want it.

The database is the only source of truth (workers may run on other machines), so the feed
polls rather than being told; one query per tick serves every client, and an idle client costs
a queue and a timer, never a connection or a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from service.db import changes
from service.db.session import Database
from service.domain import Change

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
# A stream this far behind is dropped; its client reconnects with Last-Event-ID and catches
# up from the database, so a slow reader never holds an unbounded queue.
MAX_BACKLOG = 1000


class End:
    """Put on a subscription's queue when its stream must end (shutdown or overflow)."""


END = End()


@dataclass(eq=False)
class Subscription:
    """One stream's place in the feed. `start` is the feed's cursor when it subscribed: every
    change after it arrives on `queue`; older ones the stream reads from the database."""

    experiment_id: str | None
    start: int
    queue: asyncio.Queue[Change | End] = field(default_factory=asyncio.Queue)

    def wants(self, change: Change) -> bool:
        return self.experiment_id is None or self.experiment_id == change.experiment_id


class ChangeFeed:
    def __init__(self, db: Database, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self.cursor = 0
        self._subscriptions: set[Subscription] = set()
        self._listeners: list[Callable[[list[Change]], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        self.cursor = await self.head()
        self._task = asyncio.create_task(self._run(), name="change-feed")

    def subscribe(self, experiment_id: str | None = None) -> Subscription:
        # No await between reading the cursor and registering: nothing can slip between them.
        subscription = Subscription(experiment_id=experiment_id, start=self.cursor)
        if self._closed:
            subscription.queue.put_nowait(END)
        else:
            self._subscriptions.add(subscription)
        return subscription

    def listen(self, listener: Callable[[list[Change]], None]) -> None:
        """Hand every batch of new changes to `listener` too, on the event loop: it must
        return at once (hand any work to a thread of its own)."""
        self._listeners.append(listener)

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def end_streams(self) -> None:
        """Ask every open stream to finish (the server is stopping); new ones end at once."""
        self._closed = True
        for subscription in self._subscriptions:
            subscription.queue.put_nowait(END)
        self._subscriptions.clear()

    async def close(self) -> None:
        self.end_streams()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def head(self) -> int:
        """The id of the newest change in the database now."""
        return await asyncio.to_thread(self._head)

    async def read(self, *, after: int, experiment_id: str | None = None) -> list[Change]:
        """Every change after `after` now in the database (a reconnecting stream's backlog)."""
        return await asyncio.to_thread(self._read_all, after, experiment_id)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                batch = await asyncio.to_thread(self._read_page, self.cursor)
            except Exception:  # a database hiccup: the next tick tries again from the cursor
                log.exception("reading the change log failed")
                continue
            for change in batch:
                self.cursor = change.id
                self._fan_out(change)
            if batch:
                self._tell_listeners(batch)

    def _tell_listeners(self, batch: list[Change]) -> None:
        for listener in self._listeners:
            try:
                listener(batch)
            except Exception:  # one listener's fault must not stop the streams
                log.exception("a change feed listener failed")

    def _fan_out(self, change: Change) -> None:
        for subscription in list(self._subscriptions):
            if not subscription.wants(change):
                continue
            if subscription.queue.qsize() >= MAX_BACKLOG:
                self._subscriptions.discard(subscription)
                subscription.queue.put_nowait(END)
                continue
            subscription.queue.put_nowait(change)

    def _head(self) -> int:
        with self.db.scope() as session:
            return changes.head(session)

    def _read_page(self, after: int) -> list[Change]:
        with self.db.scope() as session:
            return changes.since(session, after=after)

    def _read_all(self, after: int, experiment_id: str | None) -> list[Change]:
        found: list[Change] = []
        with self.db.scope() as session:
            while True:
                page = changes.since(session, after=after, experiment_id=experiment_id)
                found.extend(page)
                if len(page) < changes.PAGE:
                    return found
                after = page[-1].id


def end_streams_on_exit_signals(feed: ChangeFeed) -> Callable[[], None]:
    """Make SIGINT/SIGTERM end the open streams before the server's own handler runs.

    Servers such as uvicorn wait for open responses to finish before they run the lifespan's
    shutdown; an event stream never finishes by itself, so without this a stop would hang.
    Returns a function that puts the previous handlers back. Only possible on the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[signal.Signals, object] = {}

    def handler(number: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(feed.end_streams)
        chained = previous.get(signal.Signals(number))
        if callable(chained):
            chained(number, frame)
        elif chained == signal.SIG_DFL:  # nobody else handles it: do what it would have done
            signal.signal(number, signal.SIG_DFL)
            signal.raise_signal(number)

    for number in (signal.SIGINT, signal.SIGTERM):
        previous[number] = signal.getsignal(number)
        signal.signal(number, handler)

    def restore() -> None:
        for number, old in previous.items():
            if signal.getsignal(number) is handler:
                signal.signal(number, old)  # type: ignore[arg-type]

    return restore
