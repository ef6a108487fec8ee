"""Faults that are not a death lose no work and let nothing escape supervision.

A database outage during a heartbeat (a real TCP proxy in front of PostgreSQL, cut and
restored), a sweeper whose clock runs fast (libfaketime), an unreadable checkpoint, and a store
error inside the training process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from service.config import Settings
from service.worker.protocol import EXIT_INFRASTRUCTURE
from tests.factories import dense_spec, tiny_spec
from tests.helpers import (
    ServiceProcess,
    claim,
    epochs_recorded,
    settings_env,
    submit,
    training_pids,
    wait_finished,
    wait_for,
)
from tests.tcp_proxy import TcpProxy

FINISH_TIMEOUT = 300.0
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgresql")
needs_postgres = pytest.mark.skipif(
    not ON_POSTGRES, reason="needs PostgreSQL behind a TCP proxy (DATABASE_URL=postgresql...)"
)


def wait_epochs(client: Any, experiment_id: str, count: int) -> int:
    done: int = wait_for(
        lambda: (n := epochs_recorded(client, experiment_id)) >= count and n,
        timeout=FINISH_TIMEOUT,
        interval=0.05,
        what=f"{count} epochs of {experiment_id}",
    )
    return done


def assert_every_epoch_once(client: Any, experiment_id: str, epochs: int) -> dict[str, Any]:
    experiment = wait_finished(client, experiment_id, timeout=FINISH_TIMEOUT)
    assert experiment["status"] == "succeeded", experiment
    history = client.get(f"/experiments/{experiment_id}/history").json()
    assert [epoch["epoch"] for epoch in history["epochs"]] == list(range(1, epochs + 1))
    return experiment


class ConcurrencyProbe:
    """Samples the live training processes of some experiments; remembers the most at once."""

    def __init__(self, experiment_ids: list[str]) -> None:
        self.experiment_ids = experiment_ids
        self.most = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stopped.wait(0.05):
            live = sum(len(training_pids(each)) for each in self.experiment_ids)
            self.most = max(self.most, live)

    def __enter__(self) -> ConcurrencyProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        self._thread.join()


@pytest.fixture
def db_proxy(settings: Settings) -> Iterator[TcpProxy]:
    url = make_url(settings.database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


def through(settings: Settings, proxy: TcpProxy) -> Settings:
    url = make_url(settings.database_url).set(host="127.0.0.1", port=proxy.port)
    return settings.model_copy(update={"database_url": url.render_as_string(hide_password=False)})


@needs_postgres
def test_a_database_outage_during_a_heartbeat_never_abandons_the_training(
    client: TestClient,
    settings: Settings,
    db_proxy: TcpProxy,
    start_service: Callable[..., ServiceProcess],
) -> None:
    """One slot: while the outage lasts, its supervisor keeps retrying; it never leaves the
    training behind to take the next job (two trainings at once on one slot)."""
    worker = start_service(through(settings, db_proxy), "worker")
    # Epochs of several seconds: the outage falls between two epoch ends, so only the
    # supervisor's heartbeat meets it.
    first = submit(client, dense_spec(epochs=2, train_size=30_000, units=512, batch_size=16))["id"]
    with ConcurrencyProbe([first]) as probe:
        wait_epochs(client, first, 1)
        db_proxy.cut_for(2.5)
        # Delivered once the database is back: a slot whose supervisor gave up on its training
        # during the outage would take this job at once, beside the abandoned training.
        second = submit(client, tiny_spec())["id"]
        probe.experiment_ids.append(second)
        experiment = assert_every_epoch_once(client, first, 2)
        assert_every_epoch_once(client, second, 2)
    assert probe.most == 1, f"{probe.most} trainings ran at once on one slot"
    history = client.get(f"/experiments/{first}/history").json()["epochs"]
    assert [attempt["number"] for attempt in experiment["attempts"]] == [1], (
        experiment["attempts"],
        [epoch["seconds"] for epoch in history],
        worker.log()[-3000:],
    )
    assert "heartbeat of" in worker.log()  # it did meet the outage, and retried


SKEWED_SWEEPS = """
import time
from service.config import Settings
from service.db.session import Database
from service.jobs.queue import JobQueue
from service.jobs.recovery import sweep_once

settings = Settings()
db, queue = Database(settings.database_url), JobQueue(settings.queue_url)
for _ in range(5):
    print(sweep_once(db, queue), flush=True)
    time.sleep(0.3)
"""


@needs_postgres
def test_a_sweeper_whose_clock_runs_35_s_fast_leaves_a_healthy_training_alone(
    client: TestClient, settings: Settings, worker: ServiceProcess
) -> None:
    faketime = shutil.which("faketime")
    if faketime is None:
        pytest.skip("needs libfaketime (apt-get install faketime)")
    experiment_id = submit(client, dense_spec(epochs=3, train_size=12_000))["id"]
    wait_epochs(client, experiment_id, 1)
    sweeps = subprocess.run(
        [faketime, "-f", "+35s", sys.executable, "-c", SKEWED_SWEEPS],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "requeued=[]" in sweeps.stdout, sweeps.stdout + sweeps.stderr
    assert experiment_id not in sweeps.stdout, sweeps.stdout
    experiment = assert_every_epoch_once(client, experiment_id, 3)
    assert [attempt["number"] for attempt in experiment["attempts"]] == [1], experiment


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_an_unreadable_checkpoint_is_discarded_and_training_restarts(
    client: TestClient, settings: Settings, worker: ServiceProcess, damage: str
) -> None:
    experiment_id = submit(client, dense_spec(epochs=3, train_size=6_000))["id"]
    wait_epochs(client, experiment_id, 1)
    (training,) = training_pids(experiment_id)
    os.kill(training, signal.SIGSTOP)  # nothing moves while the checkpoint is damaged
    folder = Path(settings.model_store_url, "experiments", experiment_id, "checkpoint")
    damaged = sorted(folder.rglob("*.keras"))
    assert damaged, list(folder.rglob("*"))
    for path in damaged:
        if damage == "corrupt":
            path.write_bytes(b"PK\x03\x04 not a keras archive")
        else:
            path.unlink()
    os.kill(training, signal.SIGKILL)

    experiment = assert_every_epoch_once(client, experiment_id, 3)
    first, retried = experiment["attempts"]
    assert first["outcome"].startswith("lost"), first
    assert retried["start_epoch"] == 0, retried  # from scratch: no good checkpoint was left


@pytest.mark.process
def test_a_store_error_in_the_training_process_exits_to_be_requeued(
    client: TestClient, settings: Settings
) -> None:
    """The store refuses the checkpoint (its folder is a file): not the user's fault, so the
    experiment is not failed; the process exits with EXIT_INFRASTRUCTURE for a requeue."""
    experiment_id = submit(client, tiny_spec())["id"]
    attempt = claim(client, experiment_id)
    blocker = Path(settings.model_store_url, "experiments", experiment_id, "checkpoint")
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    training = subprocess.run(
        [sys.executable, "-m", "service.worker.training", experiment_id, str(attempt)],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert training.returncode == EXIT_INFRASTRUCTURE, training.stderr[-3000:]
    experiment = client.get(f"/experiments/{experiment_id}").json()
    assert experiment["status"] == "running", experiment
    assert experiment["error"] is None
    assert not training_pids(experiment_id)
