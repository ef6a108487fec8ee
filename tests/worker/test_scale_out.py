"""Scale-out with real processes: lone workers on one queue, a lone API, models on S3.

Each `python -m service worker` here has its own WORK_DIR and WORKER_LABEL, as it would on its
own machine; the API process shares nothing with them but the URLs. Runs on the embedded
defaults and, in the scaled CI pass, on PostgreSQL + Redis (the `settings` fixture wipes them).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from service.config import Settings
from service.db.session import Database
from service.ml.data import load_mnist
from service.storage import ModelStore, model_key
from service.worker.context import TrainingContext
from tests.factories import tiny_spec
from tests.helpers import (
    MNIST_PATH,
    ServiceProcess,
    free_port,
    s3_client,
    s3_options,
    submit,
    wait_finished,
    wait_for,
)

JOBS = 6
LABELS = ("host-a", "host-b")
KILL_EPOCHS = 5
# Cold TensorFlow starts, two at a time, on a shared 2-core machine, plus a lease to expire.
FINISH_TIMEOUT = 300.0
READY_TIMEOUT = 120.0


def quick_spec() -> dict[str, Any]:
    return tiny_spec(epochs=1, train_size=1000)


def killable_spec() -> dict[str, Any]:
    """Epochs of a second or two: one is recorded well before the job could end."""
    spec = tiny_spec(epochs=KILL_EPOCHS, train_size=12_000, batch_size=32)
    spec["layers"] = [
        {"type": "Flatten"},
        {"type": "Dense", "units": 128, "activation": "relu"},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ]
    return spec


# Processes ---------------------------------------------------------------------------------


def start_worker(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    root: Path,
    label: str,
    **overrides: Any,
) -> ServiceProcess:
    """A lone worker as if on its own machine: its own working directory and hostname label."""
    settings = make_settings(work_dir=str(root / f"work-{label}"), worker_label=label, **overrides)
    worker = start_service(settings, "worker")
    wait_for(
        lambda: _alive(worker) and f"worker {label}:" in worker.log(),
        timeout=READY_TIMEOUT,
        interval=0.1,
        what=f"worker {label} to start consuming",
    )
    return worker


def _alive(service: ServiceProcess) -> bool:
    assert service.process.poll() is None, service.log()[-4000:]
    return True


def start_api(
    settings: Settings, start_service: Callable[..., ServiceProcess], http: httpx.Client
) -> ServiceProcess:
    """`python -m service api` on its own port (it migrates first), answering `http`."""
    api = start_service(settings, "api")

    def healthy() -> bool:
        _alive(api)
        try:
            return http.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout=READY_TIMEOUT, interval=0.2, what="the API process to answer")
    return api


def logs(*services: ServiceProcess) -> str:
    return "\n".join(service.log()[-3000:] for service in services)


# Two workers, one queue --------------------------------------------------------------------


def test_two_lone_workers_share_one_queue(
    client: TestClient,
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    workers = [start_worker(make_settings, start_service, tmp_path, label) for label in LABELS]

    submitted = [submit(client, quick_spec())["id"] for _ in range(JOBS)]
    finished = [wait_finished(client, i, timeout=FINISH_TIMEOUT) for i in submitted]

    assert [e["status"] for e in finished] == ["succeeded"] * JOBS, logs(*workers)
    ran_on = [attempt["worker"] for e in finished for attempt in e["attempts"]]
    assert len(ran_on) == JOBS, finished  # no delivery ran twice, none was lost and retried
    assert set(ran_on) == set(LABELS), ran_on  # both workers took jobs


def test_kill_one_worker_mid_job_and_the_other_resumes_it(
    client: TestClient,
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    workers = {
        label: start_worker(make_settings, start_service, tmp_path, label) for label in LABELS
    }
    experiment_id = submit(client, killable_spec())["id"]

    def running_with_an_epoch() -> dict[str, Any] | None:
        body = client.get(f"/experiments/{experiment_id}").json()
        assert body["status"] in ("queued", "running"), body
        return body if body["status"] == "running" and body["epochs_done"] >= 1 else None

    running = wait_for(running_with_an_epoch, timeout=FINISH_TIMEOUT, what="a recorded epoch")
    victim = running["worker"]
    (survivor,) = set(LABELS) - {victim}
    workers[victim].kill()
    done_at_kill = len(client.get(f"/experiments/{experiment_id}/history").json()["epochs"])

    experiment = wait_finished(client, experiment_id, timeout=FINISH_TIMEOUT)
    assert experiment["status"] == "succeeded", logs(*workers.values())
    history = client.get(f"/experiments/{experiment_id}/history").json()
    assert [e["epoch"] for e in history["epochs"]] == list(range(1, KILL_EPOCHS + 1))
    attempts = experiment["attempts"]
    assert [a["worker"] for a in attempts] == [victim, survivor], attempts
    # The survivor has its own WORK_DIR: it resumed from the checkpoint in the shared store.
    assert 1 <= done_at_kill <= attempts[-1]["start_epoch"] < KILL_EPOCHS, (done_at_kill, attempts)
    assert attempts[-1]["outcome"] == "succeeded"
    assert experiment["worker"] == survivor


def test_workers_sharing_a_work_dir_clear_only_their_own_attempt(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Two workers on one machine with the default WORK_DIR: a stale attempt finishing late
    must not delete the files of the attempt that took its lease over."""
    settings = make_settings()
    db = Database(settings.database_url)
    store = ModelStore(str(tmp_path / "store"))
    stale, current = (
        TrainingContext(settings=settings, db=db, store=store, experiment_id="e1", attempt=number)
        for number in (1, 2)
    )
    (current.local_dir / "checkpoint.keras").write_bytes(b"epoch 3")

    stale.cleanup()
    assert (current.local_dir / "checkpoint.keras").read_bytes() == b"epoch 3"
    assert not stale.local_dir.exists()

    current.cleanup()
    assert not current.local_dir.parent.exists()
    db.dispose()


# Models on S3 --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class S3Deployment:
    """A lone API and a lone worker that share only the database, queue and store URLs."""

    http: httpx.Client
    api: ServiceProcess
    worker: ServiceProcess
    s3: Any
    bucket: str
    local_dirs: list[Path]

    def objects(self, experiment_id: str) -> list[str]:
        """Every key in the bucket under the experiment's prefix, read with boto3."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"models/experiments/{experiment_id}/"
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture
def s3_deployment(
    settings: Settings,  # wipes PostgreSQL and Redis in the scaled run
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    s3_endpoint: str,
    tmp_path: Path,
) -> Iterator[S3Deployment]:
    s3 = s3_client(s3_endpoint)
    bucket = f"models-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    store = {
        "models_url": f"s3://{bucket}/models",
        "models_storage_options": s3_options(s3_endpoint),
    }
    api_settings = make_settings(
        port=free_port(),
        models_dir=str(tmp_path / "api" / "models"),
        work_dir=str(tmp_path / "api" / "work"),
        **store,
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{api_settings.port}", timeout=60) as http:
        api = start_api(api_settings, start_service, http)
        worker = start_worker(
            make_settings,
            start_service,
            tmp_path / "worker",
            "host-s3",
            models_dir=str(tmp_path / "worker" / "models"),
            **store,
        )
        yield S3Deployment(
            http=http,
            api=api,
            worker=worker,
            s3=s3,
            bucket=bucket,
            local_dirs=[tmp_path / "api" / "models", tmp_path / "worker" / "models"],
        )


def files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


def train_one(deployment: S3Deployment) -> dict[str, Any]:
    experiment_id = submit(deployment.http, quick_spec())["id"]
    experiment = wait_finished(deployment.http, experiment_id, timeout=FINISH_TIMEOUT)
    assert experiment["status"] == "succeeded", logs(deployment.worker, deployment.api)
    return experiment


def test_workers_write_models_to_s3_and_leave_no_checkpoint(
    s3_deployment: S3Deployment, tmp_path: Path
) -> None:
    experiment = train_one(s3_deployment)
    experiment_id = experiment["id"]

    assert experiment["model_available"] is True
    objects = s3_deployment.objects(experiment_id)
    assert f"models/{model_key(experiment_id)}" in objects, objects
    assert not [key for key in objects if "/checkpoint/" in key], objects
    for directory in s3_deployment.local_dirs:
        assert files_under(directory) == [], directory
    # The worker's scratch copies go too: nothing of the model stays on its disk.
    worker_work = tmp_path / "worker" / "work-host-s3"
    wait_for(
        lambda: files_under(worker_work) == [],
        timeout=30,
        what="the worker to clear its working directory",
    )


def test_lone_api_process_predicts_with_a_model_trained_on_another_worker(
    s3_deployment: S3Deployment,
) -> None:
    experiment_id = train_one(s3_deployment)["id"]
    image = load_mnist(MNIST_PATH).x_test[0]

    answer = s3_deployment.http.post(
        "/predict", json={"image": image.tolist(), "model": experiment_id}
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["digit"] in range(10)
    assert len(body["probabilities"]) == 10
    assert sum(body["probabilities"]) == pytest.approx(1, abs=1e-3)
    assert body["digit"] == int(np.argmax(body["probabilities"]))
    assert body["model"]["experiment_id"] == experiment_id
    for directory in s3_deployment.local_dirs:  # read through the store, not a shared disk
        assert files_under(directory) == [], directory
