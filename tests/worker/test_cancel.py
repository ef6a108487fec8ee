"""Stopping jobs with a real worker: cancel while running or queued, and the wall-time limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from tests.factories import tiny_spec
from tests.helpers import (
    CLEAN_EXIT_TIMEOUT,
    ServiceProcess,
    alive,
    training_pids,
    wait_finished,
    wait_for,
    wait_untrained,
)

TIMEOUT = 180.0


def slow_epochs_spec(epochs: int) -> dict[str, Any]:
    """Epochs of several seconds, so a cancel clearly lands inside one."""
    spec = tiny_spec(epochs=epochs, train_size=30_000, batch_size=32)
    spec["layers"] = [
        {"type": "Flatten"},
        {"type": "Dense", "units": 512, "activation": "relu"},
        {"type": "Dense", "units": 256, "activation": "relu"},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ]
    return spec


def _epochs(client: TestClient, experiment_id: str) -> list[dict[str, Any]]:
    epochs: list[dict[str, Any]] = client.get(f"/experiments/{experiment_id}/history").json()[
        "epochs"
    ]
    return epochs


@pytest.mark.usefixtures("settings")  # wipes PostgreSQL and Redis in the scaled run
def test_cancel_running_stops_within_an_epoch_and_keeps_finished_epochs(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
) -> None:
    # A grace long enough that only the training's own clean stop can meet the deadline below.
    settings = make_settings(cancel_grace_seconds=120)
    with TestClient(create_app(settings)) as client:
        worker = start_service(settings, "worker")
        epochs = 20
        experiment_id = client.post("/experiments", json=slow_epochs_spec(epochs)).json()["id"]
        wait_for(
            lambda: _epochs(client, experiment_id),
            timeout=TIMEOUT,
            interval=0.05,
            what="the first epoch",
        )
        (training,) = training_pids(experiment_id)
        seen = len(_epochs(client, experiment_id))

        asked = time.monotonic()
        response = client.post(f"/experiments/{experiment_id}/cancel")
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "running"
        assert response.json()["cancel_requested"] is True
        experiment = wait_finished(client, experiment_id, timeout=TIMEOUT)
        took = time.monotonic() - asked

        assert experiment["status"] == "cancelled", (experiment, worker.log()[-3000:])
        assert experiment["error"] is None
        history = _epochs(client, experiment_id)
        # The epoch under way when the cancel landed is dropped, not recorded half-done; with
        # epochs of seconds and a 1 s heartbeat, the signal lands well inside the next epoch.
        assert [epoch["epoch"] for epoch in history] == list(range(1, seen + 1)), (seen, history)
        assert experiment["epochs_done"] == seen < epochs
        longest = max(epoch["seconds"] for epoch in history)
        assert took < longest + settings.heartbeat_seconds + 5, (took, history)
        (attempt,) = experiment["attempts"]
        assert attempt["outcome"] == "cancelled"
        assert attempt["ended_at"] is not None
        wait_untrained(
            experiment_id, what="the cancelled training process", timeout=CLEAN_EXIT_TIMEOUT
        )
        # It stopped by itself: its supervisor never had to kill it or think the lease lost;
        # the warm process waits for the slot's next job.
        assert f"lost the lease on {experiment_id}" not in worker.log()
        assert alive(training)
        assert not Path(settings.work_dir, experiment_id).exists()
        assert worker.process.poll() is None


def test_cancel_queued_job_never_starts(client: TestClient, worker: ServiceProcess) -> None:
    first = client.post("/experiments", json=tiny_spec()).json()["id"]
    second = client.post("/experiments", json=tiny_spec()).json()["id"]
    wait_for(
        lambda: client.get(f"/experiments/{first}").json()["status"] == "running",
        timeout=TIMEOUT,
        what="the first job to start",
    )

    response = client.post(f"/experiments/{second}/cancel")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "cancelled"  # at once, not at the next heartbeat

    assert wait_finished(client, first, timeout=TIMEOUT)["status"] == "succeeded"
    # The second delivery reaches the free slot, which must refuse it.
    wait_for(
        lambda: f"nothing queued may start (delivered: experiment {second})" in worker.log(),
        timeout=60,
        interval=0.2,
        what="the worker to skip the cancelled delivery",
    )
    cancelled = client.get(f"/experiments/{second}").json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["attempt"] == 0
    assert cancelled["attempts"] == []
    assert cancelled["started_at"] is None
    assert cancelled["epochs_done"] == 0
    assert client.get(f"/experiments/{second}/history").json()["epochs"] == []
    assert training_pids(second) == []


@pytest.mark.usefixtures("settings")  # wipes PostgreSQL and Redis in the scaled run
def test_training_past_wall_time_limit_fails_with_that_reason(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
) -> None:
    limit = 3.0
    settings = make_settings(max_train_seconds=limit)
    with TestClient(create_app(settings)) as client:
        worker = start_service(settings, "worker")
        experiment_id = client.post("/experiments", json=slow_epochs_spec(50)).json()["id"]
        experiment = wait_finished(client, experiment_id, timeout=TIMEOUT)

        assert experiment["status"] == "failed", (experiment, worker.log()[-3000:])
        assert "MAX_TRAIN_SECONDS" in experiment["error"]
        assert f"{limit:g} s" in experiment["error"]
        (attempt,) = experiment["attempts"]
        assert attempt["outcome"].startswith("failed")
        assert "MAX_TRAIN_SECONDS" in attempt["outcome"]
        assert training_pids(experiment_id) == []
        wait_for(
            lambda: not Path(settings.work_dir, experiment_id).exists(),
            timeout=10,
            what="the killed training's work files to be removed",
        )
        # Not requeued: a limit is an answer, not a crash to retry.
        assert experiment["attempt"] == 1
        assert worker.process.poll() is None
