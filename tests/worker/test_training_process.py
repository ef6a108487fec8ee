"""A warm training process per worker slot: it trains job after job, until it has trained
TRAINING_PROCESS_JOBS of them or waited TRAINING_PROCESS_IDLE_SECONDS for one, and nothing of
one job reaches the next (its history, a late signal). A killed one is replaced
(tests/worker/test_recovery.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.worker.protocol import CANCEL_SIGNAL, DRAIN_SIGNAL, EXIT_OK
from service.worker.title import ROOM
from tests.factories import IMAGE, tiny_spec
from tests.helpers import (
    ServiceProcess,
    alive,
    claim,
    command_line,
    descendants,
    settings_env,
    submit,
    trained_by,
    wait_finished,
    wait_for,
    wait_gone,
    wait_untrained,
)

TIMEOUT = 300.0
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
SMALL = {"epochs": 2, "train_size": 1000, "validation_size": 500}
# Both draw on the random state at every step (initialisers, dropout masks, shuffling) and
# differ in every way a job could leave something behind: layers, optimizer, seed, callbacks.
DROPOUT_NET = tiny_spec(**SMALL, batch_size=32, seed=3) | {
    "name": "dropout-net",
    "layers": [
        {"type": "Flatten"},
        {"type": "Dense", "units": 64, "activation": "relu"},
        {"type": "BatchNormalization"},
        {"type": "Dropout", "rate": 0.3},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ],
    "compile": {"optimizer": {"type": "SGD", "learning_rate": 0.05, "momentum": 0.9}},
}
DROPOUT_NET_ADAM = DROPOUT_NET | {
    "name": "dropout-net-adam",
    "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.01}},
    "fit": DROPOUT_NET["fit"] | {"seed": 5},
}
CONV_NET = tiny_spec(**SMALL, batch_size=64, seed=9) | {
    "name": "conv-net",
    "layers": [
        IMAGE,
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "activation": "relu"},
        {"type": "Flatten"},
        {"type": "Dropout", "rate": 0.5},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ],
    "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.01}},
}
CONV_NET["fit"]["reduce_lr_on_plateau"] = {"factor": 0.5, "patience": 0, "min_delta": 10.0}
# Sets its title, then prints its command line as `ps` and the tests read it.
TITLE_PROBE = """
import sys
from service.worker.title import set_title
set_title(sys.argv[1].split())
print(open("/proc/self/cmdline", "rb").read().replace(b"\\0", b" ").decode().strip())
"""


def succeeded(client: TestClient, worker: ServiceProcess, experiment_id: str) -> dict[str, Any]:
    experiment = wait_finished(client, experiment_id, timeout=TIMEOUT)
    assert experiment["status"] == "succeeded", (experiment, worker.log()[-3000:])
    return experiment


def history(client: TestClient, experiment_id: str) -> list[tuple[float, ...]]:
    epochs = client.get(f"/experiments/{experiment_id}/history").json()["epochs"]
    return [tuple(epoch[metric] for metric in METRICS) for epoch in epochs]


def test_a_warm_process_shows_the_job_it_trains_as_its_command_line() -> None:
    title = "python -m service.worker.training 0123456789abcdef0123456789abcdef 2"
    shown = subprocess.run(
        [sys.executable, "-c", TITLE_PROBE, title, ROOM],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == title


@pytest.mark.usefixtures("settings")  # wipes PostgreSQL and Redis in the scaled run
@pytest.mark.parametrize(("jobs_per_process", "processes"), [(2, [0, 0, 1]), (1, [0, 1, 2])])
def test_a_slot_trains_its_jobs_in_one_process_until_it_has_trained_its_share(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    jobs_per_process: int,
    processes: list[int],
) -> None:
    settings = make_settings(training_process_jobs=jobs_per_process)
    with TestClient(create_app(settings)) as client:
        worker = start_service(settings, "worker")
        jobs = [submit(client, tiny_spec(epochs=1, train_size=500))["id"] for _ in range(3)]
        for job in jobs:
            succeeded(client, worker, job)
        by_job = [trained_by(worker.log(), job) for job in jobs]
        assert all(len(pids) == 1 for pids in by_job), by_job
        pids = [pid for (pid,) in by_job]
        first_seen = list(dict.fromkeys(pids))
        assert [first_seen.index(pid) for pid in pids] == processes, pids
        # One that trained its share exits; one with jobs to go waits for the slot's next.
        done = [pid for pid in first_seen if pids.count(pid) == jobs_per_process]
        wait_gone(done, what="the training processes that trained their share")
        assert all(alive(pid) for pid in first_seen if pid not in done)


def waiting_processes(worker: ServiceProcess) -> list[int]:
    """The worker's training processes that wait for a job (none trains one now)."""
    return [
        pid
        for pid in descendants(worker.pid)
        if alive(pid) and command_line(pid).endswith("service.worker.training --serve")
    ]


@pytest.mark.usefixtures("settings")  # wipes PostgreSQL and Redis in the scaled run
def test_a_process_that_trained_its_share_is_replaced_before_the_next_job_comes(
    make_settings: Callable[..., Settings], start_service: Callable[..., ServiceProcess]
) -> None:
    """The replacement warms up (TensorFlow, MNIST) while no job waits for it: the next job
    goes to the process that was already there, not to one started when it came."""
    settings = make_settings(training_process_jobs=1)
    with TestClient(create_app(settings)) as client:
        worker = start_service(settings, "worker")
        first = succeeded(client, worker, submit(client, tiny_spec(epochs=1, train_size=500))["id"])
        (recycled,) = trained_by(worker.log(), first["id"])
        wait_gone([recycled], what="the process that trained its share")
        (ready,) = wait_for(
            lambda: waiting_processes(worker), timeout=TIMEOUT, what="its replacement"
        )
        second = succeeded(
            client, worker, submit(client, tiny_spec(epochs=1, train_size=500))["id"]
        )
        assert trained_by(worker.log(), second["id"]) == [ready]


@pytest.mark.usefixtures("settings")  # wipes PostgreSQL and Redis in the scaled run
def test_a_process_that_waits_too_long_for_a_job_exits_and_the_next_job_starts_a_fresh_one(
    make_settings: Callable[..., Settings], start_service: Callable[..., ServiceProcess]
) -> None:
    settings = make_settings(training_process_idle_seconds=1.0)
    with TestClient(create_app(settings)) as client:
        worker = start_service(settings, "worker")
        first = succeeded(client, worker, submit(client, tiny_spec(epochs=1, train_size=500))["id"])
        (idle,) = trained_by(worker.log(), first["id"])
        wait_gone([idle], what="the idle training process")
        assert f"training process {idle} waited 1 s for a job; closing it" in worker.log()

        second = succeeded(
            client, worker, submit(client, tiny_spec(epochs=1, train_size=500))["id"]
        )
        assert trained_by(worker.log(), second["id"]) not in ([], [idle])


def test_a_cancel_or_drain_signal_between_jobs_reaches_no_job(
    client: TestClient, worker: ServiceProcess
) -> None:
    """A supervisor's signal that lands after its job ended (the job finished as the cancel
    came) is dropped: the process lives on, and the slot's next job trains to its end."""
    first = submit(client, tiny_spec(epochs=1, train_size=500))["id"]
    succeeded(client, worker, first)
    (warm,) = trained_by(worker.log(), first)
    wait_untrained(first, what="the first job's process")
    os.kill(warm, CANCEL_SIGNAL)
    os.kill(warm, DRAIN_SIGNAL)

    second = succeeded(client, worker, submit(client, tiny_spec(epochs=2, train_size=500))["id"])
    assert second["epochs_done"] == 2
    assert [attempt["outcome"] for attempt in second["attempts"]] == ["succeeded"]
    assert trained_by(worker.log(), second["id"]) == [warm]


def test_a_warm_process_trains_a_job_as_a_fresh_process_does(
    client: TestClient, settings: Settings, start_service: Callable[..., ServiceProcess]
) -> None:
    """The same spec and seed give the very same history (and test scores) in a process that
    trained another net just before as in a one-shot process of its own."""
    alone = submit(client, DROPOUT_NET)["id"]
    fresh = subprocess.run(
        [sys.executable, "-m", "service.worker.training", alone, str(claim(client, alone))],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert fresh.returncode == EXIT_OK, fresh.stderr[-3000:]
    worker = start_service(settings, "worker")
    before = succeeded(client, worker, submit(client, CONV_NET)["id"])
    # Of DROPOUT_NET's architecture: the process keeps its model (service/ml/traced.py).
    succeeded(client, worker, submit(client, DROPOUT_NET_ADAM)["id"])
    # The kept model, with this job's optimizer; then with the same one (its train function).
    after = [succeeded(client, worker, submit(client, DROPOUT_NET)["id"]) for _ in range(2)]

    (warm,) = trained_by(worker.log(), before["id"])
    assert all(trained_by(worker.log(), job["id"]) == [warm] for job in after)
    assert all(reused_traces(worker.log(), job["id"]) for job in after)
    assert len(history(client, alone)) == SMALL["epochs"]
    lone = client.get(f"/experiments/{alone}").json()
    scores = ("test_loss", "test_accuracy")
    for job in after:
        assert history(client, job["id"]) == history(client, alone)
        assert [job[score] for score in scores] == [lone[score] for score in scores]


def reused_traces(log: str, experiment_id: str) -> bool:
    """Whether the job trained a model its process kept from an earlier job."""
    pattern = rf"experiment {experiment_id} took .*reused the traced model"
    return re.search(pattern, log) is not None
