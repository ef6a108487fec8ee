"""Submitting under faults and abuse: a broker outage, retried POSTs (Idempotency-Key), and
concurrent POSTs against the per-client queue cap."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.jobs.queue import JobQueue
from service.jobs.recovery import sweep_once
from tests.factories import tiny_spec
from tests.helpers import ServiceProcess, free_port, named, runtime_of, wait_for
from tests.tcp_proxy import TcpProxy


def test_post_while_the_broker_is_down_is_stored_and_delivered_later(
    settings: Settings,
    make_settings: Callable[..., Settings],
    redis_proxy: TcpProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{redis_proxy.port}/0"
    JobQueue(url).flush()
    with TestClient(create_app(make_settings(queue_url=url, redis_socket_timeout=2.0))) as client:
        redis_proxy.cut()
        with caplog.at_level(logging.WARNING):
            response = client.post("/experiments", json=tiny_spec())
        assert response.status_code == 202, response.text
        experiment_id = response.json()["id"]
        assert "will be delivered by the sweep" in caplog.text
        assert client.get(f"/experiments/{experiment_id}").json()["status"] == "queued"

        redis_proxy.restore()
        runtime = runtime_of(client)
        sweep_once(runtime.db, runtime.queue)
        assert experiment_id in runtime.queue.pending_ids()
        sweep_once(runtime.db, runtime.queue)  # delivered once: not again
        assert runtime.queue.pending() == 1


def test_a_retried_post_with_its_idempotency_key_returns_the_first_experiment(
    client: TestClient,
) -> None:
    key = {"Idempotency-Key": "retry-1"}
    first = client.post("/experiments", json=tiny_spec(), headers=key)
    again = client.post("/experiments", json=tiny_spec(), headers=key)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert client.get("/experiments").json()["count"] == 1
    assert runtime_of(client).queue.pending() == 1
    other = client.post("/experiments", json=tiny_spec(), headers={"Idempotency-Key": "retry-2"})
    assert other.json()["id"] != first.json()["id"]


def test_an_idempotency_key_reused_for_another_body_is_409(client: TestClient) -> None:
    key = {"Idempotency-Key": "k"}
    first = client.post("/experiments", json=tiny_spec(), headers=key)
    reused = client.post("/experiments", json=named(tiny_spec(), "other"), headers=key)
    assert reused.status_code == 409
    body = reused.json()
    assert body["error"] == "idempotency_key_reused"
    assert "Idempotency-Key 'k' was used for a different request" in body["detail"]
    assert first.json()["id"] in body["detail"]


def test_idempotency_keys_belong_to_their_client(client: TestClient) -> None:
    key = {"Idempotency-Key": "shared"}
    mine = client.post("/experiments", json=tiny_spec(), headers=key).json()["id"]
    elsewhere = TestClient(client.app, client=("192.0.2.9", 50000))
    theirs = elsewhere.post("/experiments", json=tiny_spec(), headers=key)
    assert theirs.status_code == 202
    assert theirs.json()["id"] != mine


def _post_at_once(client: TestClient, count: int, headers: dict[str, str]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(
            pool.map(
                lambda i: client.post(
                    "/experiments", json=named(tiny_spec(), f"n{i}"), headers=headers
                ),
                range(count),
            )
        )


def test_concurrent_posts_never_overshoot_the_queue_cap(
    settings: Settings, make_settings: Callable[..., Settings]
) -> None:
    cap = 3
    with TestClient(create_app(make_settings(max_queued_per_client=cap))) as client:
        for _ in range(3):  # rounds: each starts from an empty queue
            responses = _post_at_once(client, 12, {})
            codes = sorted(response.status_code for response in responses)
            assert codes == [202] * cap + [429] * (12 - cap), codes
            queued = client.get("/experiments", params={"status": "queued"}).json()["data"]
            assert len(queued) == cap
            for experiment in queued:
                client.post(f"/experiments/{experiment['id']}/cancel")


def test_the_same_key_sent_twice_at_once_creates_one_experiment(client: TestClient) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(
            pool.map(
                lambda _: client.post(
                    "/experiments", json=tiny_spec(), headers={"Idempotency-Key": "twin"}
                ),
                range(6),
            )
        )
    assert {response.status_code for response in responses} == {202}
    assert len({response.json()["id"] for response in responses}) == 1
    assert client.get("/experiments").json()["count"] == 1


def _rotating_forwarded_for(port: int, count: int) -> list[int]:
    """POST `count` experiments from this host, each naming another client in X-Forwarded-For."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        return [
            http.post(
                "/experiments",
                json=named(tiny_spec(), f"n{i}"),
                headers={"X-Forwarded-For": f"10.7.0.{i}"},
            ).status_code
            for i in range(count)
        ]


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        pytest.param("", [202, 202, 429], id="no-proxy-named"),
        pytest.param("127.0.0.1", [202, 202, 202], id="the-proxy-named"),
    ],
)
def test_x_forwarded_for_counts_only_from_the_proxies_named(
    settings: Settings,
    start_service: Callable[..., ServiceProcess],
    trusted: str,
    expected: list[int],
) -> None:
    port = free_port()
    start_service(
        settings.model_copy(
            update={"port": port, "max_queued_per_client": 2, "forwarded_allow_ips": trusted}
        ),
        "api",
    )
    wait_for(lambda: _health(port), timeout=60, what=f"the API on port {port}")
    assert _rotating_forwarded_for(port, 3) == expected


def _health(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
