"""Fair share: the ordering policy as pure functions, and the claim that applies it in one
transaction (on SQLite, and on PostgreSQL in the scaled run)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from service.db import claims
from service.db.models import AttemptRow, ExperimentRow, PersonRow
from service.db.session import Database
from service.jobs.fair_share import (
    Policy,
    Span,
    Waiting,
    decayed_seconds,
    decayed_usage,
    fair_order,
)
from tests.helpers import create_queued

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
HOUR = 3600.0


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def job(name: str, client: str, minute: float, seconds: float = 60.0) -> Waiting:
    return Waiting(experiment_id=name, client_id=client, created_at=at(minute), seconds=seconds)


def names(order: list[Waiting]) -> list[str]:
    return [item.experiment_id for item in order]


# The policy ---------------------------------------------------------------------------------


def test_an_hour_ago_counts_half() -> None:
    hour_ago = Span("a", NOW - timedelta(hours=1, seconds=1), NOW - timedelta(hours=1))
    assert decayed_seconds(hour_ago, now=NOW, half_life=HOUR) == pytest.approx(0.5, rel=1e-3)
    now = Span("a", NOW - timedelta(seconds=1), NOW)
    assert decayed_seconds(now, now=NOW, half_life=HOUR) == pytest.approx(1.0, rel=1e-3)


def test_a_long_span_integrates_the_decay() -> None:
    """An hour of training ending now: the integral of 2^-t/h over [0, h], h/ln2 * 1/2."""
    span = Span("a", NOW - timedelta(hours=1), NOW)
    expected = HOUR / math.log(2) * 0.5
    assert decayed_seconds(span, now=NOW, half_life=HOUR) == pytest.approx(expected)


def test_a_running_span_counts_up_to_now_and_usage_adds_up_by_client() -> None:
    spans = [
        Span("a", NOW - timedelta(seconds=10), None),
        Span("a", NOW - timedelta(seconds=20), NOW - timedelta(seconds=10)),
        Span("b", NOW - timedelta(seconds=5), NOW),
    ]
    used = decayed_usage(spans, now=NOW, half_life=HOUR)
    assert used["a"] == pytest.approx(20, rel=1e-2)
    assert used["b"] == pytest.approx(5, rel=1e-2)


def test_with_no_usage_the_queue_is_first_come_first_served_per_client_round() -> None:
    """One heavy client's 4 jobs, then two light ones: each light job runs after at most one
    of the heavy's, and the heavy's all still run, in their own order."""
    waiting = [job(f"h{i}", "heavy", i) for i in range(4)] + [
        job("a", "alice", 10),
        job("b", "bob", 11),
    ]
    assert names(fair_order(waiting, {})) == ["h0", "a", "b", "h1", "h2", "h3"]


def test_least_recent_usage_goes_first_then_the_earlier_submission() -> None:
    waiting = [job("old", "busy", 0), job("new", "idle", 5), job("newer", "idle2", 6)]
    usage = {"busy": 300.0, "idle": 10.0}
    assert names(fair_order(waiting, usage)) == ["newer", "new", "old"]
    assert names(fair_order(waiting, {"busy": 1.0, "idle": 1.0, "idle2": 1.0})) == [
        "old",
        "new",
        "newer",
    ]


def test_fewer_running_breaks_an_even_usage() -> None:
    waiting = [job("h1", "heavy", 0), job("a", "alice", 1)]
    assert names(fair_order(waiting, {}, {"heavy": 1})) == ["a", "h1"]


def test_a_client_at_max_running_waits_behind_everyone() -> None:
    waiting = [job("h1", "heavy", 0), job("a", "alice", 1)]
    order = fair_order(waiting, {"alice": 999.0}, {"heavy": 2}, max_running=2)
    assert names(order) == ["a", "h1"]


def test_a_long_job_counts_for_more_in_the_projected_order() -> None:
    waiting = [
        job("long", "a", 0, seconds=600),
        job("a2", "a", 1, seconds=60),
        job("b1", "b", 2, seconds=60),
        job("b2", "b", 3, seconds=60),
        job("b3", "b", 4, seconds=60),
    ]
    assert names(fair_order(waiting, {})) == ["long", "b1", "b2", "b3", "a2"]


# The claim ----------------------------------------------------------------------------------


def queued_for(db: Database, client: str, name: str) -> str:
    experiment_id = create_queued(db, name=name)
    with db.scope() as session:
        session.execute(
            update(ExperimentRow).where(ExperimentRow.id == experiment_id).values(client_id=client)
        )
    return experiment_id


def claim_next(db: Database, *, max_running: int | None = None, fair: bool = True) -> str | None:
    policy = Policy(half_life=HOUR, max_running=max_running, fair=fair)
    with db.scope() as session:
        claimed = claims.claim_fairest(session, worker="w", lease_seconds=60, policy=policy)
    return claimed.experiment_id if claimed else None


def test_usage_summed_by_the_database_is_the_decay_summed_in_python(db: Database) -> None:
    """claims.usage sums decayed_seconds in SQL: the same figure for spans ended, running,
    ending after now, and begun before the window; spans ended before it are not read."""
    spans = [
        Span("address:a", at(-30), at(-20)),
        Span("address:a", at(-5), None),  # running: counts up to now
        Span("address:b", at(-90.5), at(-61.25)),
        Span("address:b", at(-1), at(3)),  # ends after now: counts up to now
        Span("address:c", at(-700), at(-590)),  # began before the window, ends inside it
        Span("address:d", at(-0.001), at(-0.0005)),  # half a second, to the microsecond
    ]
    outside = Span("address:e", at(-900), at(-800))  # ended ten half-lives ago and more
    for number, span in enumerate([*spans, outside]):
        experiment_id = queued_for(db, span.client_id, f"s{number}")
        with db.scope() as session:
            session.add(
                AttemptRow(
                    experiment_id=experiment_id,
                    number=1,
                    started_at=span.started_at,
                    ended_at=span.ended_at,
                )
            )
    with db.scope() as session:
        summed = claims.usage(session, now=NOW, half_life=HOUR)
    expected = decayed_usage(spans, now=NOW, half_life=HOUR)
    assert summed.keys() == expected.keys()
    for client, seconds in expected.items():  # timestamps as floats: a microsecond apart at most
        assert summed[client] == pytest.approx(seconds, rel=1e-9, abs=1e-6), client


def test_the_claim_takes_the_fairest_job_not_the_delivered_one(db: Database) -> None:
    heavy = [queued_for(db, "address:heavy", f"h{i}") for i in range(3)]
    light = queued_for(db, "address:light", "light")
    assert claim_next(db) == heavy[0]
    assert claim_next(db) == light  # the heavy client is running one: the light goes next
    assert claim_next(db) == heavy[1]
    assert claim_next(db) == heavy[2]
    assert claim_next(db) is None


def test_recent_training_time_puts_a_client_behind(db: Database) -> None:
    first = queued_for(db, "address:heavy", "h0")
    assert claim_next(db) == first
    with db.scope() as session:  # it trained ten minutes and finished
        session.execute(
            update(AttemptRow)
            .where(AttemptRow.experiment_id == first)
            .values(
                started_at=datetime.now(UTC) - timedelta(minutes=10),
                ended_at=datetime.now(UTC),
            )
        )
        session.execute(
            update(ExperimentRow).where(ExperimentRow.id == first).values(status="succeeded")
        )
    again = queued_for(db, "address:heavy", "h1")
    later = queued_for(db, "address:light", "light")
    assert claim_next(db) == later
    assert claim_next(db) == again


def test_max_running_per_person_leaves_their_jobs_queued(db: Database) -> None:
    person = "person:0123456789abcdef0123456789abcdef"
    with db.scope() as session:  # running_per_person counts owned work only
        session.add(PersonRow(id=person.removeprefix("person:"), name="heavy", role="student"))
    first, second = (queued_for(db, person, f"h{i}") for i in range(2))
    with db.scope() as session:
        session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.id.in_([first, second]))
            .values(owner_id=person.removeprefix("person:"))
        )
    assert claim_next(db, max_running=1) == first
    assert claim_next(db, max_running=1) is None  # the only job left is theirs
    light = queued_for(db, "address:light", "light")
    assert claim_next(db, max_running=1) == light
    assert claim_next(db, max_running=2) == second


def test_without_fair_share_the_oldest_job_goes_first_whoever_s(db: Database) -> None:
    heavy = [queued_for(db, "address:heavy", f"h{i}") for i in range(2)]
    light = queued_for(db, "address:light", "light")
    assert [claim_next(db, fair=False) for _ in range(3)] == [*heavy, light]
