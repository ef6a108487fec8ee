"""A rolling restart loses nothing: SIGTERM drains a worker, and its job resumes elsewhere.

The worker stops claiming, lets the training finish (checkpoint and record) its current epoch,
releases the claim back to `queued` without spending an attempt, and exits; a new worker
finishes the job with each epoch recorded exactly once. A second SIGTERM, or the grace running
out, stops the training at once; the claim is still released for free. A signal to the whole
process group (systemd's `KillMode=control-group`, Ctrl-C in a terminal) is one request to drain:
the training processes obey their supervisor, never the signal.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from tests.factories import dense_spec
from tests.helpers import (
    ServiceProcess,
    epochs_recorded,
    free_port,
    training_pids,
    wait_finished,
    wait_for,
    wait_gone,
)

EPOCHS = 4
FINISH_TIMEOUT = 300.0
RELEASE_TIMEOUT = 60.0
SIGNAL_INTERVAL = 0.5


def slow_spec(*, long_epochs: bool) -> dict[str, Any]:
    if long_epochs:
        return dense_spec(epochs=EPOCHS, train_size=30_000, units=512, batch_size=16)
    return dense_spec(epochs=EPOCHS, train_size=12_000)


def drain(
    client: TestClient,
    settings: Settings,
    start_service: Callable[..., ServiceProcess],
    *,
    args: tuple[str, ...],
    signals: int,
    long_epochs: bool,
    signum: signal.Signals = signal.SIGTERM,
    group: bool = False,
) -> tuple[ServiceProcess, str, int, int]:
    """Start a worker, send it `signum` (`signals` times; to its whole process group with
    `group`) mid-training; the experiment, the epochs recorded when it was signalled, and those
    recorded once it had gone (and the service)."""
    service = start_service(settings, *args)
    experiment_id = client.post("/experiments", json=slow_spec(long_epochs=long_epochs)).json()[
        "id"
    ]
    wait_for(
        lambda: epochs_recorded(client, experiment_id) >= 1,
        timeout=FINISH_TIMEOUT,
        what="the first epoch",
    )
    (training,) = training_pids(experiment_id)
    at_signal = epochs_recorded(client, experiment_id)
    for _ in range(signals):
        if group:  # the service leads its own session: its process group is its pid
            os.killpg(service.pid, signum)
        else:
            service.process.send_signal(signum)
        # Apart: the interpreter runs its handler once for signals that arrive together.
        time.sleep(SIGNAL_INTERVAL)
    service.process.wait(timeout=settings.shutdown_grace_seconds + RELEASE_TIMEOUT)
    wait_gone([training], what="the drained training process")
    return service, experiment_id, at_signal, epochs_recorded(client, experiment_id)


def assert_released_then_finished(
    client: TestClient,
    settings: Settings,
    start_service: Callable[..., ServiceProcess],
    experiment_id: str,
    *,
    recorded: int,
) -> None:
    released = client.get(f"/experiments/{experiment_id}").json()
    assert released["status"] == "queued", released
    # The same budget as before its first claim: the released attempt was not spent.
    assert released["max_attempts"] - released["attempt"] == settings.max_attempts, released
    assert released["attempts"][0]["outcome"].startswith("released: its worker shut down")

    start_service(settings, "worker")
    experiment = wait_finished(client, experiment_id, timeout=FINISH_TIMEOUT)
    assert experiment["status"] == "succeeded", experiment
    history = client.get(f"/experiments/{experiment_id}/history").json()
    assert [epoch["epoch"] for epoch in history["epochs"]] == list(range(1, EPOCHS + 1))
    _, resumed = experiment["attempts"]
    assert resumed["start_epoch"] == recorded, experiment["attempts"]


@pytest.mark.parametrize("args", [("worker",), ()], ids=["worker", "api-and-worker"])
def test_sigterm_lets_the_epoch_finish_and_releases_the_claim_for_free(
    client: TestClient,
    settings: Settings,
    start_service: Callable[..., ServiceProcess],
    args: tuple[str, ...],
) -> None:
    settings = settings.model_copy(update={"shutdown_grace_seconds": 90.0, "port": free_port()})
    _, experiment_id, at_signal, recorded = drain(
        client, settings, start_service, args=args, signals=1, long_epochs=False
    )
    # The epoch that was running finished and was recorded before the claim went back.
    assert recorded > at_signal, (at_signal, recorded)
    assert_released_then_finished(client, settings, start_service, experiment_id, recorded=recorded)


def test_a_second_sigterm_stops_the_training_at_once_and_still_releases_for_free(
    client: TestClient, settings: Settings, start_service: Callable[..., ServiceProcess]
) -> None:
    settings = settings.model_copy(update={"shutdown_grace_seconds": 90.0})
    # Long epochs: the second signal lands mid-epoch, which is lost; the checkpoint is not.
    _, experiment_id, at_signal, recorded = drain(
        client, settings, start_service, args=("worker",), signals=2, long_epochs=True
    )
    assert recorded == at_signal
    assert_released_then_finished(client, settings, start_service, experiment_id, recorded=recorded)


@pytest.mark.parametrize(
    ("signum", "args"),
    [
        (signal.SIGTERM, ()),
        (signal.SIGINT, ()),
        (signal.SIGTERM, ("worker",)),
    ],
    ids=["systemd-stop", "ctrl-c", "systemd-stop-worker"],
)
def test_a_signal_to_the_whole_group_drains_like_one_to_the_worker(
    settings: Settings,
    start_service: Callable[..., ServiceProcess],
    signum: signal.Signals,
    args: tuple[str, ...],
) -> None:
    # One attempt only: a training killed by the signal would fail the job.
    settings = settings.model_copy(
        update={"shutdown_grace_seconds": 90.0, "port": free_port(), "max_attempts": 1}
    )
    with TestClient(create_app(settings)) as client:
        service, experiment_id, at_signal, recorded = drain(
            client,
            settings,
            start_service,
            args=args,
            signals=1,
            long_epochs=False,
            signum=signum,
            group=True,
        )
        log = service.log()
        # The signal reached every process, yet the training finished its epoch as its
        # supervisor asked, and the worker counted one request (the API's forwarded one too).
        assert recorded > at_signal, (at_signal, recorded, log)
        assert "Traceback" not in log, log
        assert "KeyboardInterrupt" not in log, log
        assert "stopping the remaining trainings now" not in log, log
        assert len(re.findall(rf"experiment {experiment_id}.*released", log)) == 1, log
        assert_released_then_finished(
            client, settings, start_service, experiment_id, recorded=recorded
        )
