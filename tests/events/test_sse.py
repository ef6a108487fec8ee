"""Server-Sent Events from the change log: order, resume with Last-Event-ID, the end.

The changes are written as any writer would (rows in `experiments` and `epochs`), so the
database triggers are what is under test, together with the feed and the streams.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.api.app import create_app
from service.config import Settings
from service.db import repository
from service.db.session import Database
from service.events.feed import ChangeFeed
from service.events.stream import event_stream
from tests.helpers import free_port, wait_for

Event = dict[str, Any]


def parse_events(body: str) -> list[Event]:
    events = []
    for block in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.strip()
        if "id" in fields:
            events.append(
                {"id": int(fields["id"]), "event": fields["event"], **json.loads(fields["data"])}
            )
    return events


def new_experiment(db: Database, name: str = "sse") -> str:
    with db.scope() as session:
        experiment = repository.create_experiment(
            session,
            name=name,
            description=None,
            spec={},
            summary={},
            client_id="test",
            max_attempts=3,
        )
    return experiment.id


def set_status(db: Database, experiment_id: str, status: str, **values: Any) -> None:
    assignments = ", ".join(["status = :status", *(f"{key} = :{key}" for key in values)])
    with db.scope() as session:
        session.execute(
            text(f"UPDATE experiments SET {assignments} WHERE id = :id"),
            {"id": experiment_id, "status": status, **values},
        )


def add_epoch(db: Database, experiment_id: str, epoch: int) -> None:
    with db.scope() as session:
        session.execute(
            text(
                "INSERT INTO epochs (experiment_id, epoch, loss, accuracy, val_loss, "
                "val_accuracy, seconds, attempt, recorded_at) VALUES (:id, :epoch, 0.5, 0.8, "
                "0.4, 0.85, 1.5, 1, CURRENT_TIMESTAMP)"
            ),
            {"id": experiment_id, "epoch": epoch},
        )


def run_to_the_end(db: Database, experiment_id: str, epochs: int = 2) -> None:
    set_status(db, experiment_id, "running", attempt=1)
    for epoch in range(1, epochs + 1):
        add_epoch(db, experiment_id, epoch)
    set_status(db, experiment_id, "succeeded", test_accuracy=0.9451)


@pytest.fixture
def db(client: TestClient, settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)  # the app migrated it
    yield database
    database.dispose()


def test_a_finished_experiment_streams_its_changes_in_order_then_ends(
    client: TestClient, db: Database
) -> None:
    experiment_id = new_experiment(db)
    run_to_the_end(db, experiment_id)

    response = client.get(f"/experiments/{experiment_id}/events")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_events(response.text)
    assert [(e["event"], e.get("status"), e.get("epoch")) for e in events] == [
        ("status", "queued", None),
        ("status", "running", None),
        ("epoch", None, 1),
        ("epoch", None, 2),
        ("status", "succeeded", None),
    ]
    ids = [event["id"] for event in events]
    assert ids == sorted(set(ids))
    assert events[-1]["test_accuracy"] == 0.9451
    assert events[2]["val_accuracy"] == 0.85
    assert events[0]["cancel_requested"] is False


def test_last_event_id_resumes_without_gaps_or_duplicates(client: TestClient, db: Database) -> None:
    experiment_id = new_experiment(db)
    other = new_experiment(db, "other")
    run_to_the_end(db, experiment_id, epochs=4)
    run_to_the_end(db, other)
    everything = parse_events(client.get(f"/experiments/{experiment_id}/events").text)

    for cut in range(len(everything) - 1):
        resumed = client.get(
            f"/experiments/{experiment_id}/events",
            headers={"Last-Event-ID": str(everything[cut]["id"])},
        )
        assert parse_events(resumed.text) == everything[cut + 1 :]


def test_an_ended_experiment_with_nothing_left_answers_204(
    client: TestClient, db: Database
) -> None:
    experiment_id = new_experiment(db)
    run_to_the_end(db, experiment_id)
    last = parse_events(client.get(f"/experiments/{experiment_id}/events").text)[-1]["id"]

    response = client.get(
        f"/experiments/{experiment_id}/events", headers={"Last-Event-ID": str(last)}
    )

    assert response.status_code == 204  # a browser's EventSource stops reconnecting


def test_an_unknown_experiment_is_404(client: TestClient) -> None:
    assert client.get(f"/experiments/{'0' * 32}/events").status_code == 404


class LiveServer:
    """The app on a real port in a thread: the ASGI test transports buffer whole bodies."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=30, what="the live server")
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings.model_copy(update={"events_poll_seconds": 0.05})) as server:
        yield server


def read_events(lines: Iterator[str], count: int) -> list[Event]:
    block: list[str] = []
    events: list[Event] = []
    for line in lines:
        if line:
            block.append(line)
            continue
        events.extend(parse_events("\n".join(block) + "\n\n"))
        block = []
        if len(events) >= count:
            break
    return events


def test_live_changes_arrive_as_they_are_recorded_and_the_stream_ends_with_the_experiment(
    live: LiveServer, settings: Settings
) -> None:
    db = Database(settings.database_url)
    experiment_id = new_experiment(db)
    with (
        httpx.Client(base_url=live.url, timeout=30) as http,
        http.stream("GET", f"/experiments/{experiment_id}/events") as stream,
    ):
        lines = stream.iter_lines()
        assert read_events(lines, 1)[0]["status"] == "queued"
        set_status(db, experiment_id, "running", attempt=1)
        assert read_events(lines, 1)[0]["status"] == "running"
        started = time.monotonic()
        add_epoch(db, experiment_id, 1)
        epoch = read_events(lines, 1)[0]
        assert (epoch["event"], epoch["epoch"]) == ("epoch", 1)
        assert time.monotonic() - started < 5
        set_status(db, experiment_id, "failed", error="boom")
        rest = read_events(lines, 10)  # stops at the end of the body
    assert [event["status"] for event in rest] == ["failed"]
    db.dispose()


def test_the_global_stream_resumes_from_last_event_id_then_goes_live(
    live: LiveServer, settings: Settings
) -> None:
    db = Database(settings.database_url)
    first = new_experiment(db, "first")
    with httpx.Client(base_url=live.url, timeout=30) as http:
        with http.stream("GET", "/events") as stream:
            lines = stream.iter_lines()
            second = new_experiment(db, "second")
            seen = read_events(lines, 1)
        assert [(e["experiment_id"], e["status"]) for e in seen] == [(second, "queued")]
        # Changes made while the client was away, then a reconnect with the last id it saw.
        set_status(db, first, "running")
        set_status(db, second, "cancelled")
        with db.scope() as session:
            repository.delete_experiment(session, second)
        headers = {"Last-Event-ID": str(seen[-1]["id"])}
        with http.stream("GET", "/events", headers=headers) as stream:
            lines = stream.iter_lines()
            missed = read_events(lines, 3)
            add_epoch(db, first, 1)
            live_event = read_events(lines, 1)
    assert [(e["experiment_id"], e["event"], e.get("status")) for e in missed] == [
        (first, "status", "running"),
        (second, "status", "cancelled"),
        (second, "deleted", None),
    ]
    assert (live_event[0]["experiment_id"], live_event[0]["epoch"]) == (first, 1)
    ids = [event["id"] for event in seen + missed + live_event]
    assert ids == sorted(set(ids))
    db.dispose()


def test_ending_the_feed_ends_open_streams(settings: Settings, client: TestClient) -> None:
    async def scenario() -> list[str]:
        db = Database(settings.database_url)
        feed = ChangeFeed(db, poll_seconds=0.05)
        await feed.start()
        subscription = feed.subscribe()
        chunks: list[str] = []

        async def consume() -> None:
            async for chunk in event_stream(
                feed, subscription, [], last_id=0, end_with_experiment=False
            ):
                chunks.append(chunk)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        await feed.close()  # what the lifespan does at shutdown, and SIGTERM before it
        await asyncio.wait_for(task, 5)
        db.dispose()
        assert feed.subscribers == 0
        return chunks

    chunks = asyncio.run(scenario())
    assert chunks == ["retry: 2000\n\n"]
