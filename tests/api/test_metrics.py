"""GET /metrics: the Prometheus exposition parses, and its figures move when work happens;
request ids come back and reach the logs; several API processes are summed in one scrape."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service import logs
from service.api.app import create_app
from service.config import Settings
from tests.factories import tiny_spec
from tests.helpers import (
    STROKE,
    ServiceProcess,
    claim,
    free_port,
    named,
    publish,
    save_untrained_model,
    submit,
    wait_for,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
IMAGE = {"image": STROKE}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_untrained_model(tmp_path_factory.mktemp("untrained") / "model.keras")


def scrape(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def read(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return scrape(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_predictions_and_the_model_cache_are_counted(
    client: TestClient, model_file: Path
) -> None:
    served = publish(client, model_file)
    before = read(client)
    for _ in range(3):
        assert client.post("/predict", json=IMAGE).status_code == 200
    assert client.post("/predict", json={"images": [IMAGE["image"]] * 5}).status_code == 200
    assert client.get("/experiments/nope").status_code == 404
    after = read(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("http_requests_total", method="POST", route="/predict", status="200") == 4
    assert moved("http_request_duration_seconds_count", method="POST", route="/predict") == 4
    assert (
        moved(
            "http_requests_total",
            method="GET",
            route="/experiments/{experiment_id}",
            status="404",
        )
        == 1
    )
    assert moved("mnist_predictions_total", model=served) == 8
    assert moved("mnist_prediction_batch_size_count", model=served) == 4
    assert moved("mnist_prediction_batch_size_bucket", model=served, le="1.0") == 3
    assert moved("mnist_model_cache_hits_total") + moved("mnist_model_cache_misses_total") >= 4
    assert value(after, "mnist_model_load_seconds_count") >= 1
    assert "mnist_sse_clients" in {name for name, _ in after}


def test_database_figures_experiments_queue_trainings_heartbeats(
    client: TestClient, model_file: Path
) -> None:
    publish(client, model_file)
    running = submit(client, named(tiny_spec(), "running"))["id"]
    claim(client, running)  # a worker "t" holds its lease, renewed just now
    submit(client, named(tiny_spec(), "waiting"))
    samples = read(client)

    assert value(samples, "mnist_experiments", status="succeeded") == 1
    assert value(samples, "mnist_experiments", status="running") == 1
    assert value(samples, "mnist_experiments", status="queued") == 1
    assert value(samples, "mnist_experiments", status="failed") == 0
    assert value(samples, "mnist_trainings_running") == 1
    assert value(samples, "mnist_queue_depth") >= 1
    assert 0 <= value(samples, "mnist_worker_heartbeat_age_seconds", worker="t") < 10
    assert value(samples, "mnist_attempts_lost", reason="lease_expired") == 0
    assert value(samples, "mnist_epoch_seconds_count") == 0


def test_request_ids_are_returned_made_up_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    given = client.get("/v2/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.get("/v2/health/live").headers["x-request-id"]
    assert len(made) == 32
    assert client.get("/v2/health/live", headers={"X-Request-ID": "a b"}).headers[
        "x-request-id"
    ] not in ("a b", made)

    record = logging.LogRecord("service", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    token = logs.REQUEST_ID.set("abc-123")
    try:
        logs.RequestIdFilter().filter(record)
    finally:
        logs.REQUEST_ID.reset(token)
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["request_id"] == "abc-123"
    assert entry["message"] == "hello you"
    assert entry["level"] == "INFO"


def test_protect_reads_covers_metrics(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(api_token="secret", protect_reads=True)
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 401
        authorised = client.get("/metrics", headers={"Authorization": "Bearer secret"})
        assert authorised.status_code == 200


def test_several_api_processes_are_summed_in_one_scrape(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
) -> None:
    port = free_port()
    settings = make_settings(port=port)
    service = start_service(settings, "api", "--workers", "2")
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/v2/health/live", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=90, what="two API processes")
    wait_for(lambda: len(service.children()) >= 2, timeout=30, what="two API processes")
    for _ in range(40):  # new connections each time: the kernel spreads them over both
        httpx.get(f"{base}/v2/health/live")
    samples = scrape(httpx.get(f"{base}/metrics").text)
    live = value(
        samples, "http_requests_total", method="GET", route="/v2/health/live", status="200"
    )
    # Each process counts only what it answered; the scrape sums both (and the sum is exact).
    assert live >= 40
    assert "2 process(es)" in service.log()
