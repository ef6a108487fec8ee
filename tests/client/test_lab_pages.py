"""Lab.experiments reads past the API's 200 rows a page by following each page's cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi.testclient import TestClient

from mnist_lab import Lab
from service.db.models import ExperimentRow, queued_experiment
from service.db.session import Database
from service.spec.experiment import ExperimentSpec
from tests.factories import tiny_spec

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _seed(db: Database, count: int) -> list[str]:
    spec = ExperimentSpec.model_validate(
        {key: value for key, value in tiny_spec().items() if key != "name"}
    ).model_dump(mode="json")
    ids = []
    with db.scope() as session:
        for number in range(count):
            values = queued_experiment(
                name=f"net {number}",
                description=None,
                spec=spec,
                summary=None,
                client_id="anonymous",
                max_attempts=1,
            )
            values["created_at"] = T0 + timedelta(seconds=number)
            session.add(ExperimentRow(**values))
            ids.append(values["id"])
    return ids


class Counted(httpx.BaseTransport):
    """The test client's transport, counting the requests that go through it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)


def test_more_than_a_page_is_read_cursor_after_cursor(client: TestClient, db: Database) -> None:
    ids = _seed(db, 450)
    transport = Counted(client._transport)
    with Lab(str(client.base_url), transport=transport) as lab:
        rows = lab.experiments(limit=430)
        assert [row["id"] for row in rows] == ids[::-1][:430]
        assert [request.url.params.get("limit") for request in transport.requests] == [
            "200",
            "200",
            "30",
        ]
        assert "cursor" in transport.requests[-1].url.params
        assert len(lab.experiments(limit=1000)) == 450
