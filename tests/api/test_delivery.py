"""Lost deliveries: a queued experiment the queue does not hold is delivered again by the
sweep, however busy the queue is; a duplicate delivery is harmless."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from service.db import claims
from service.db.models import ExperimentRow
from service.domain import utcnow
from service.jobs.recovery import REDELIVER_AFTER_SECONDS, sweep_once
from tests.factories import tiny_spec
from tests.helpers import named, runtime_of, submit


def _age_deliveries(client: TestClient) -> None:
    """Pretend every delivery happened long enough ago for the sweep to check it."""
    with runtime_of(client).db.scope() as session:
        session.execute(
            update(ExperimentRow).values(
                delivered_at=utcnow() - timedelta(seconds=2 * REDELIVER_AFTER_SECONDS)
            )
        )


def test_a_lost_delivery_is_sent_again_while_the_queue_is_busy(client: TestClient) -> None:
    queue = runtime_of(client).queue
    waiting = submit(client, named(tiny_spec(), "waiting"))["id"]
    lost = submit(client, named(tiny_spec(), "lost"))["id"]
    queue.flush()  # both messages lost ...
    queue.enqueue(waiting)  # ... and one of them back: the queue is not empty
    _age_deliveries(client)

    sweep_once(runtime_of(client).db, queue)

    assert queue.pending_ids() == {waiting, lost}
    assert queue.pending() == 2  # the one the queue held is not sent twice


def test_a_recent_delivery_is_left_alone(client: TestClient) -> None:
    queue = runtime_of(client).queue
    submit(client)
    queue.flush()
    sweep_once(runtime_of(client).db, queue)
    assert queue.pending() == 0  # it may still be on its way to a worker


def test_a_duplicate_delivery_claims_nothing(client: TestClient) -> None:
    experiment_id = submit(client)["id"]
    db = runtime_of(client).db
    with db.scope() as session:
        first = claims.claim(session, experiment_id=experiment_id, worker="a", lease_seconds=60)
    with db.scope() as session:
        second = claims.claim(session, experiment_id=experiment_id, worker="b", lease_seconds=60)
    assert first is not None
    assert second is None
    assert client.get(f"/experiments/{experiment_id}").json()["attempt"] == 1
