"""A person's limits, each a 429 that says what to wait for: their queued jobs
(MAX_QUEUED_PER_PERSON) and their training minutes today (MAX_TRAINING_MINUTES_PER_DAY)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from service.db.models import AttemptRow
from tests.factories import tiny_spec
from tests.helpers import ADMIN, Class, claim, runtime_of, submit


def test_a_person_has_their_own_queue_cap(app_with: Callable[..., TestClient]) -> None:
    school = Class(app_with(api_token=ADMIN, max_queued_per_person=2, max_queued_per_client=50))
    school.add("alice")
    school.add("bob")
    for _ in range(2):
        submit(school.client, headers=school.as_("alice"))
    refused = school.client.post("/experiments", json=tiny_spec(), headers=school.as_("alice"))
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "queue_full"
    assert "MAX_QUEUED_PER_PERSON" in refused.json()["detail"]
    assert "wait for some to start or cancel them" in refused.json()["detail"]
    submit(school.client, headers=school.as_("bob"))  # a cap per person, not per address


def test_a_person_over_their_daily_minutes_is_told_when_it_resets(
    app_with: Callable[..., TestClient],
) -> None:
    school = Class(app_with(api_token=ADMIN, max_training_minutes_per_day=5))
    school.add("alice")
    school.add("bob")
    trained = submit(school.client, headers=school.as_("alice"))["id"]
    claim(school.client, trained)
    now = datetime.now(UTC)
    with runtime_of(school.client).db.scope() as session:
        attempt = session.get(AttemptRow, (trained, 1))
        assert attempt is not None
        attempt.started_at = max(now - timedelta(minutes=6), now.replace(hour=0, minute=0))
        attempt.ended_at = now
    if now - now.replace(hour=0, minute=0, second=0) < timedelta(minutes=6):
        return  # just after midnight UTC there were not 6 minutes today to have used
    refused = school.client.post("/experiments", json=tiny_spec(), headers=school.as_("alice"))
    assert refused.status_code == 429, refused.text
    body = refused.json()
    assert body["error"] == "training_time_used"
    assert "MAX_TRAINING_MINUTES_PER_DAY" in body["detail"]
    assert "resets at" in body["detail"]
    assert f"{(now + timedelta(days=1)):%Y-%m-%d} 00:00 UTC" in body["detail"]
    submit(school.client, headers=school.as_("bob"))  # bob has his own minutes
