"""The experiment list's keyset pages: a walk by `cursor` shows every matching experiment once,
in the order asked (ties and runs without a test accuracy included), exactly as `offset` pages
do; a cursor that is not ours, or not for the order asked, is a 422."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, event, select

from service.db import pages, repository
from service.db.models import ExperimentRow, ExperimentTagRow, queued_experiment
from service.db.session import Database
from service.spec.experiment import ExperimentSpec
from tests.factories import tiny_spec

SPEC = ExperimentSpec.model_validate(
    {key: value for key, value in tiny_spec().items() if key != "name"}
).model_dump(mode="json")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ORDERS = ["created", "-created", "test_accuracy", "-test_accuracy"]
FILTERS: list[dict[str, Any]] = [
    {},
    {"status": "succeeded"},
    {"tag": "a"},
    {"tag": "a", "status": "succeeded"},
    {"tag": ["b", "a"]},
]


def _seed(db: Database) -> list[dict[str, Any]]:
    """23 experiments: created in threes at one instant (ties the id breaks), some scored with
    equal accuracies, the queued ones without any; every other one tagged `a`, every third `b`."""
    rows = []
    with db.scope() as session:
        for number in range(23):
            values = queued_experiment(
                name=f"net {number}",
                description=None,
                spec=SPEC,
                summary=None,
                client_id="anonymous",
                max_attempts=1,
            )
            scored = number % 4 != 0
            values.update(
                created_at=T0 + timedelta(minutes=number // 3),
                status="succeeded" if scored else "queued",
                test_accuracy=0.9 + (number % 5) / 100 if scored else None,
            )
            session.add(ExperimentRow(**values))
            tags = [tag for tag, every in (("a", 2), ("b", 3)) if number % every == 0]
            for tag in tags:
                session.add(
                    ExperimentTagRow(
                        experiment_id=values["id"], tag=tag, created_at=values["created_at"]
                    )
                )
            rows.append({**values, "tags": tags})
    return rows


def _expected(rows: list[dict[str, Any]], order: str, filters: dict[str, Any]) -> list[str]:
    kept = [
        row
        for row in rows
        if row["status"] == filters.get("status", row["status"])
        and set(_as_list(filters.get("tag", []))) <= set(row["tags"])
    ]
    descending = order.startswith("-")
    if order.endswith("created"):
        kept.sort(key=lambda row: (row["created_at"], row["id"]), reverse=descending)
        return [row["id"] for row in kept]
    scored = sorted(
        (row for row in kept if row["test_accuracy"] is not None),
        key=lambda row: (row["test_accuracy"], row["id"]),
        reverse=descending,
    )
    unscored = sorted(
        (row for row in kept if row["test_accuracy"] is None),
        key=lambda row: row["id"],
        reverse=descending,
    )
    return [row["id"] for row in scored + unscored]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _walk(client: TestClient, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    page = client.get("/experiments", params={**params, "view": "compact"}).json()
    yield page
    while page["next_cursor"]:
        following = {**params, "view": "compact", "cursor": page["next_cursor"]}
        page = client.get("/experiments", params=following).json()
        yield page


@pytest.mark.parametrize(
    "filters", FILTERS, ids=["all", "status", "tag", "tag-and-status", "two-tags"]
)
@pytest.mark.parametrize("order", ORDERS)
def test_a_cursor_walk_shows_each_match_once_in_order_as_offset_pages_do(
    client: TestClient, db: Database, order: str, filters: dict[str, Any]
) -> None:
    expected = _expected(_seed(db), order, filters)
    params = {"order": order, "limit": 4, **filters}
    pages = list(_walk(client, params))
    walked = [row["id"] for page in pages for row in page["data"]]
    assert walked == expected
    assert {page["count"] for page in pages} == {len(expected)}
    assert pages[-1]["next_cursor"] is None
    by_offset = [
        row["id"]
        for offset in range(0, len(expected), 4)
        for row in client.get("/experiments", params={**params, "offset": offset}).json()["data"]
    ]
    assert by_offset == expected


def test_the_link_header_leads_to_the_next_page_in_json_and_csv(
    client: TestClient, db: Database
) -> None:
    _seed(db)
    first = client.get("/experiments", params={"tag": "a", "limit": 5, "order": "created"})
    link = first.headers["link"]
    assert link.endswith('>; rel="next"')
    assert f"cursor={first.json()['next_cursor']}" in link
    second = client.get(link[1 : link.index(">")])
    assert second.json()["data"][0]["created_at"] >= first.json()["data"][-1]["created_at"]
    csv = client.get("/experiments", params={"tag": "a", "limit": 5, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    following = client.get(csv.links["next"]["url"])
    assert following.status_code == 200
    assert following.text.splitlines()[1] not in csv.text
    last = client.get("/experiments", params={"limit": 200})
    assert "link" not in last.headers
    assert last.json()["next_cursor"] is None


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "bm90IGpzb24",  # base64 of "not json"
        "AAAA",
        _cursor({"order": "-created"}),
        _cursor(["-created", 7, "abc"]),
        _cursor(["-created", "yesterday", "abc"]),
        _cursor(["-created", "2026-12-01T09:00:00", "abc"]),  # no time zone
        _cursor(["sideways", None, "abc"]),
        _cursor(["-created", "2026-12-01T09:00:00+00:00", ""]),
    ],
)
def test_a_cursor_we_did_not_write_is_a_422(client: TestClient, cursor: str) -> None:
    response = client.get("/experiments", params={"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_cursor"
    assert "next_cursor" in response.json()["detail"]


@pytest.mark.parametrize("cursor", ["not-a-cursor!", "%%%", "a" * 401])
def test_a_cursor_outside_the_alphabet_is_refused_by_its_schema(
    client: TestClient, cursor: str
) -> None:
    response = client.get("/experiments", params={"cursor": cursor})
    assert response.status_code == 422
    assert "cursor" in response.text


def test_a_non_finite_accuracy_in_a_cursor_is_a_422(client: TestClient) -> None:
    cursor = base64.urlsafe_b64encode(b'["-test_accuracy", NaN, "abc"]').decode()
    response = client.get("/experiments", params={"cursor": cursor, "order": "-test_accuracy"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_cursor"


def test_a_cursor_for_another_order_or_with_an_offset_is_a_422(
    client: TestClient, db: Database
) -> None:
    _seed(db)
    cursor = client.get("/experiments", params={"limit": 2}).json()["next_cursor"]
    other = client.get("/experiments", params={"cursor": cursor, "order": "test_accuracy"})
    assert other.status_code == 422
    assert "order=-created" in other.json()["detail"]
    both = client.get("/experiments", params={"cursor": cursor, "offset": 2})
    assert both.status_code == 422
    assert "not both" in both.json()["detail"]


def test_a_row_deleted_between_a_page_s_ids_and_its_rows_is_left_out(db: Database) -> None:
    """A page reads its ids, then their rows, in two statements that may see two snapshots: an
    experiment deleted in between is missing from the page, not a KeyError."""
    expected = _expected(_seed(db), "-created", {})[:5]
    gone = expected[2]

    def delete_once(conn: Any, cursor: Any, sql: str, *_: Any) -> None:
        if sql.startswith("SELECT experiments.id") and not deleted:
            deleted.append(gone)
            with db.scope() as other:
                other.execute(delete(ExperimentRow).where(ExperimentRow.id == gone))

    deleted: list[str] = []
    event.listen(db.engine, "after_cursor_execute", delete_once)
    try:
        with db.scope() as session:
            page = pages.list_experiments(session, limit=4)
    finally:
        event.remove(db.engine, "after_cursor_execute", delete_once)
    assert deleted == [gone]
    assert [item.id for item in page.items] == [i for i in expected[:4] if i != gone]
    assert page.next is not None
    assert page.next.id == expected[3]


def _plan_of_page_ids(db: Database, **filters: Any) -> list[str]:
    """SQLite's plan of the statement that reads a list page's ids."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        statements.append((sql, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.scope() as session:
            pages.list_experiments(session, limit=4, **filters)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    sql, parameters = statements[0]
    assert sql.startswith("SELECT experiments.id")
    with db.engine.connect() as connection:
        plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
        return [row[-1] for row in plan]


@pytest.mark.parametrize("order", ["-created", "created"])
def test_a_tag_s_page_in_created_order_is_one_range_of_the_tag_s_index(
    db: Database, order: str
) -> None:
    """No sort of all the tag's runs (SQLite's temporary B-tree): the page is the first rows of
    (tag, created_at, experiment_id), by offset and after a cursor alike."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's EXPLAIN QUERY PLAN")
    _seed(db)
    with db.scope() as session:
        first = pages.list_experiments(session, tags=["a"], order=order, limit=4)
    assert first.next is not None
    for filters in ({}, {"offset": 4}, {"after": first.next}):
        plan = _plan_of_page_ids(db, tags=["a"], order=order, **filters)
        assert any("ix_experiment_tags_tag_created" in step for step in plan), plan
        assert not any("TEMP B-TREE" in step for step in plan), plan


def test_a_tag_written_with_its_experiment_carries_its_created_at(db: Database) -> None:
    with db.scope() as session:
        experiment = repository.create_experiment(
            session,
            name="tagged",
            description=None,
            spec=SPEC,
            summary={},
            client_id="anonymous",
            max_attempts=1,
            tags=["a", "b"],
        )
    with db.scope() as session:
        tags = session.scalars(
            select(ExperimentTagRow).where(ExperimentTagRow.experiment_id == experiment.id)
        ).all()
        assert [(tag.tag, tag.created_at) for tag in tags] == [
            ("a", experiment.created_at),
            ("b", experiment.created_at),
        ]
