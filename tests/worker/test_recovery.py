"""Crash recovery with real processes: SIGKILL the training, the worker, or the whole service.

Each time the job must still succeed, with every epoch in its history exactly once, and the
attempt that took over must have resumed from the checkpoint, after the last finished epoch.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.storage import checkpoint_prefix, store_from_settings
from tests.factories import tiny_spec
from tests.helpers import (
    CLEAN_EXIT_TIMEOUT,
    ServiceProcess,
    alive,
    descendants,
    free_port,
    trained_by,
    training_pids,
    wait_finished,
    wait_for,
    wait_gone,
    wait_untrained,
)

EPOCHS = 5
# Generous: two cold TensorFlow starts on a shared 2-core machine, plus a lease to expire.
FINISH_TIMEOUT = 300.0


def slow_spec(epochs: int = EPOCHS) -> dict[str, Any]:
    """Epochs of a second or two: slow enough to kill one mid-way, quick enough for CI."""
    spec = tiny_spec(epochs=epochs, train_size=12_000, batch_size=32)
    spec["layers"] = [
        {"type": "Flatten"},
        {"type": "Dense", "units": 128, "activation": "relu"},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ]
    return spec


# Shared assertions ---------------------------------------------------------------------------


def wait_epochs(client: Any, experiment_id: str, count: int) -> int:
    """Wait until `count` epochs are recorded while the job runs; the number seen."""

    def enough() -> int:
        body = client.get(f"/experiments/{experiment_id}/history").json()
        assert body["status"] in ("queued", "running"), body
        return len(body["epochs"]) if len(body["epochs"]) >= count else 0

    done: int = wait_for(enough, timeout=FINISH_TIMEOUT, interval=0.05, what=f"{count} epochs")
    return done


def assert_cleaned_up(experiment_id: str, worker: ServiceProcess, settings: Settings) -> None:
    """The training ends by itself, leaving no checkpoint and no work files, not even those
    of the attempt that was killed."""
    wait_untrained(experiment_id, what="the finished training", timeout=CLEAN_EXIT_TIMEOUT)
    assert f"lost the lease on {experiment_id}" not in worker.log()
    assert not store_from_settings(settings).exists(checkpoint_prefix(experiment_id))
    leftovers = Path(settings.work_dir, experiment_id)
    assert not leftovers.exists(), sorted(str(path) for path in leftovers.rglob("*"))


def assert_resumed(
    client: Any,
    experiment_id: str,
    *,
    done_at_kill: int,
    worker: ServiceProcess,
    settings: Settings,
) -> list[Any]:
    experiment = wait_finished(client, experiment_id, timeout=FINISH_TIMEOUT)
    assert experiment["status"] == "succeeded", (experiment, worker.log()[-4000:])
    history = client.get(f"/experiments/{experiment_id}/history").json()
    assert [epoch["epoch"] for epoch in history["epochs"]] == list(range(1, EPOCHS + 1))
    assert experiment["epochs_done"] == EPOCHS
    assert 0.5 < experiment["test_accuracy"] <= 1

    attempts = experiment["attempts"]
    assert [attempt["number"] for attempt in attempts] == [1, 2], attempts
    first, resumed = attempts
    assert first["start_epoch"] == 0
    assert first["outcome"].startswith("lost"), first
    # It picked up from the checkpoint, not from scratch and not past what was done.
    assert 1 <= done_at_kill <= resumed["start_epoch"] < EPOCHS, (done_at_kill, attempts)
    assert resumed["outcome"] == "succeeded"
    moments = [first["started_at"], first["ended_at"], resumed["started_at"]]
    assert sorted(moments, key=datetime.fromisoformat) == moments, attempts
    assert experiment["attempt"] == 2
    assert_cleaned_up(experiment_id, worker, settings)
    return list(attempts)


# The tests -----------------------------------------------------------------------------------


def test_kill_training_process_mid_epoch_resumes_after_last_epoch(
    client: TestClient, settings: Settings, worker: ServiceProcess
) -> None:
    experiment_id = client.post("/experiments", json=slow_spec()).json()["id"]
    wait_epochs(client, experiment_id, 2)
    (training,) = training_pids(experiment_id)
    done_at_kill = len(client.get(f"/experiments/{experiment_id}/history").json()["epochs"])
    os.kill(training, signal.SIGKILL)

    first, _ = assert_resumed(
        client, experiment_id, done_at_kill=done_at_kill, worker=worker, settings=settings
    )
    assert "died" in first["outcome"]
    assert "SIGKILL" in first["outcome"]
    assert not alive(training)
    assert worker.process.poll() is None, "the worker must outlive its training process"
    # The slot's next job (the resumed attempt) went to a fresh process.
    killed, fresh = trained_by(worker.log(), experiment_id)
    assert killed == training != fresh


def test_kill_worker_takes_its_training_along_and_another_worker_resumes(
    client: TestClient,
    settings: Settings,
    worker: ServiceProcess,
    start_service: Callable[..., ServiceProcess],
) -> None:
    experiment_id = client.post("/experiments", json=slow_spec()).json()["id"]
    wait_epochs(client, experiment_id, 2)
    (training,) = training_pids(experiment_id)
    done_at_kill = len(client.get(f"/experiments/{experiment_id}/history").json()["epochs"])
    worker.kill()
    wait_gone([training], what="the killed worker's training process")

    second = start_service(settings, "worker")
    first, _ = assert_resumed(
        client, experiment_id, done_at_kill=done_at_kill, worker=second, settings=settings
    )
    assert "stopped renewing its lease" in first["outcome"]


def _wait_healthy(http: httpx.Client, service: ServiceProcess) -> None:
    def healthy() -> bool:
        assert service.process.poll() is None, service.log()[-4000:]
        try:
            return http.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout=120, interval=0.2, what="the service to answer /health")


@pytest.mark.usefixtures("settings")  # wipes PostgreSQL and Redis in the scaled run
def test_kill_whole_service_then_restart_resumes(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
) -> None:
    settings = make_settings(port=free_port())
    service = start_service(settings)
    with httpx.Client(base_url=f"http://127.0.0.1:{settings.port}", timeout=60) as http:
        _wait_healthy(http, service)
        created = http.post("/experiments", json=slow_spec())
        assert created.status_code == 202, created.text
        experiment_id = created.json()["id"]
        wait_epochs(http, experiment_id, 2)
        (training,) = training_pids(experiment_id)
        family = descendants(service.pid)
        assert training in family
        assert len(family) == 2, family  # the embedded worker and its training process
        done_at_kill = len(http.get(f"/experiments/{experiment_id}/history").json()["epochs"])
        service.kill()
        wait_gone(family, what="the embedded worker and the training process")

        restarted = start_service(settings)
        _wait_healthy(http, restarted)
        first, _ = assert_resumed(
            http, experiment_id, done_at_kill=done_at_kill, worker=restarted, settings=settings
        )
        assert "stopped renewing its lease" in first["outcome"]
