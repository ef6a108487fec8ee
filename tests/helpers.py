"""Helpers every test module may import: processes, waiting, submitting, seeding, S3.

Fixtures live in `tests/conftest.py`, request factories in `tests/factories.py`; test modules
import from these three only, never from each other (`tests/test_layout.py` checks).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import fastapi.routing
import httpx
import keras
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from service.config import Settings
from service.db import claims, leases, repository
from service.db.session import Database
from service.domain import Experiment, Status
from service.export import notebook
from service.runtime import Runtime
from service.schemas.experiments import ExperimentCreate
from service.spec.fingerprint import normalised_spec
from service.storage import model_key
from tests.factories import tiny_spec

REPO = Path(__file__).resolve().parents[1]
# A local mnist.npz when MNIST_PATH is set; unset, service.ml.data downloads it through Keras.
MNIST_PATH = os.environ.get("MNIST_PATH") or None

S3_CREDENTIALS = {"key": "testing", "secret": "testing"}
REGION = "us-east-1"

# A training that wrote its outcome still tears TensorFlow down before it exits.
CLEAN_EXIT_TIMEOUT = 30.0
NO_ORPHAN_TIMEOUT = 10.0


# Processes -----------------------------------------------------------------------------------


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a subprocess needs to see exactly these settings."""
    env = {key: value for key, value in os.environ.items() if key not in _setting_names()}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[name.upper()] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    env["PYTHONUNBUFFERED"] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def _setting_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


class ServiceProcess:
    """A real `python -m service ...` process, killed for sure at teardown."""

    def __init__(self, args: list[str], settings: Settings, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", *args],
            env=settings_env(settings),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the process alone, as a crash would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self._log.close()

    def children(self) -> list[int]:
        return _children(self.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in path.read_text().split()]
    except FileNotFoundError:
        return []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.05, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)


def wait_finished(client: Any, experiment_id: str, *, timeout: float = 120) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        body = client.get(f"/experiments/{experiment_id}").json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    result: dict[str, Any] = wait_for(
        finished, timeout=timeout, interval=0.2, what=f"experiment {experiment_id} to finish"
    )
    return result


# Processes of a training -------------------------------------------------------------------
# Read from /proc rather than ServiceProcess.children(): the supervisor starts the training
# from a Huey worker thread, and /proc/<pid>/task/<pid>/children lists the main thread's only.


def _live_processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process that is not a zombie."""
    found: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # The command name may hold spaces and parentheses: split after the last ")".
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state in ("Z", "X"):
            continue
        found[int(entry.name)] = (int(ppid), cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def command_line(pid: int) -> str:
    """What `ps` shows as the process's command line ("" once it is gone)."""
    return _live_processes().get(pid, (0, ""))[1].strip()


def descendants(pid: int) -> list[int]:
    processes = _live_processes()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, (ppid, _) in processes.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def training_pids(experiment_id: str) -> list[int]:
    """Live processes training the experiment now: a one-shot `python -m
    service.worker.training <experiment_id> <attempt>`, or a warm one whose command line reads
    so while it trains the job (service/worker/title.py)."""
    return [
        pid
        for pid, (_, cmdline) in _live_processes().items()
        if "service.worker.training" in cmdline and experiment_id in cmdline
    ]


def wait_untrained(experiment_id: str, *, what: str, timeout: float = NO_ORPHAN_TIMEOUT) -> None:
    """Until no process trains the experiment: its process exited, or (a warm one) waits for
    its slot's next job."""
    wait_for(
        lambda: not training_pids(experiment_id),
        timeout=timeout,
        interval=0.1,
        what=f"{what} to stop training {experiment_id}",
    )


def trained_by(log: str, experiment_id: str) -> list[int]:
    """The training processes that logged the experiment's epochs, in the order they did."""
    pids = re.findall(rf"\[training (\d+)\] experiment {experiment_id} epoch ", log)
    return list(dict.fromkeys(int(pid) for pid in pids))


def alive(pid: int) -> bool:
    return pid in _live_processes()


def wait_gone(pids: list[int], *, what: str, timeout: float = NO_ORPHAN_TIMEOUT) -> None:
    wait_for(
        lambda: not any(alive(pid) for pid in pids),
        timeout=timeout,
        interval=0.1,
        what=f"{what} ({pids}) to exit",
    )


# Experiments seeded without training ------------------------------------------------------


UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


def runtime_of(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def save_untrained_model(path: Path, *, seed: int = 0) -> Path:
    """Flatten -> Dense 10 softmax with seeded random weights, saved as a worker saves one."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")]
    )
    model.save(path)
    return path


def submit(
    client: Any, spec: dict[str, Any] | None = None, *, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """POST an experiment (`tiny_spec()` unless given), check it was accepted; its body."""
    response = client.post("/experiments", json=spec or tiny_spec(), headers=headers)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def named(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return {**spec, "name": name}


def claim(client: TestClient, experiment_id: str) -> int:
    return claim_in(runtime_of(client).db, experiment_id)


def claim_in(db: Database, experiment_id: str) -> int:
    """Claim a queued experiment as a worker would (a 60 s lease); the attempt number."""
    with db.scope() as session:
        claimed = claims.claim(session, experiment_id=experiment_id, worker="t", lease_seconds=60)
    assert claimed is not None
    return claimed.attempt


def publish(
    client: TestClient,
    model_path: Path,
    *,
    name: str = "tiny",
    test_accuracy: float = 0.9,
    headers: dict[str, str] | None = None,
) -> str:
    """A succeeded experiment serving `model_path`: store and database as a worker leaves them."""
    runtime = runtime_of(client)
    experiment_id = submit(client, named(tiny_spec(), name), headers=headers)["id"]
    attempt = claim(client, experiment_id)
    uri = runtime.store.put_file(model_path, model_key(experiment_id))
    with runtime.db.scope() as session:
        assert leases.succeed(
            session,
            experiment_id=experiment_id,
            attempt=attempt,
            test_loss=1.0 - test_accuracy,
            test_accuracy=test_accuracy,
            model_uri=uri,
            versions={"tensorflow": "test", "keras": keras.__version__},
        )
    return experiment_id


def fail(client: TestClient, name: str = "diverged") -> str:
    experiment_id = submit(client, named(tiny_spec(), name))["id"]
    attempt = claim(client, experiment_id)
    with runtime_of(client).db.scope() as session:
        assert leases.finish(
            session,
            experiment_id=experiment_id,
            attempt=attempt,
            status=Status.FAILED,
            error="training diverged",
        )
    return experiment_id


def put_alias(client: TestClient, alias: str, experiment_id: str) -> dict[str, Any]:
    response = client.put(f"/models/{alias}", json={"experiment_id": experiment_id})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# S3 (moto) -----------------------------------------------------------------------------------


def s3_options(endpoint: str) -> dict[str, Any]:
    return {"client_kwargs": {"endpoint_url": endpoint, "region_name": REGION}, **S3_CREDENTIALS}


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=S3_CREDENTIALS["key"],
        aws_secret_access_key=S3_CREDENTIALS["secret"],
    )


# A Redis to cut (behind `tests.tcp_proxy.TcpProxy`) ---------------------------------------------


class RedisServer:
    """A throwaway `redis-server` on a free port, for tests that need a real broker to cut."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10, what="redis-server to answer")

    def _answers(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# A "1": a light vertical stroke on black, MNIST's way round (an all-zero image is refused).
STROKE = [
    [255 if 12 <= column <= 15 and 4 <= row <= 23 else 0 for column in range(28)]
    for row in range(28)
]
# Notebooks --------------------------------------------------------------------------------


def queued_experiment(
    *, id: str, name: str, spec: dict[str, Any], created_at: datetime, description: str | None
) -> Experiment:
    """A queued experiment as the repository hands one out, without a database."""
    return Experiment(
        id=id,
        name=name,
        description=description,
        spec=spec,
        summary=None,
        status=Status.QUEUED,
        created_at=created_at,
        started_at=None,
        finished_at=None,
        test_loss=None,
        test_accuracy=None,
        error=None,
        attempt=0,
        max_attempts=3,
        cancel_requested=False,
        model_uri=None,
        worker=None,
    )


def unsaved_experiment(body: dict[str, Any]) -> Experiment:
    """A queued experiment of `body` (for service/export, which writes it as a notebook)."""
    spec = ExperimentCreate.model_validate(body)
    return queued_experiment(
        id="0123456789abcdef0123456789abcdef",
        name=spec.name,
        description=spec.description,
        spec=normalised_spec(spec.draft().spec),
        created_at=datetime.now(UTC),
    )


def notebook_of(*bodies: dict[str, Any]) -> dict[str, Any]:
    """One nbformat notebook holding each body's exported notebook, one after the other."""
    exported = [notebook.notebook(unsaved_experiment(body)) for body in bodies]
    cells = [cell for document in exported for cell in document["cells"]]
    for number, cell in enumerate(cells):
        cell["id"] = f"cell-{number}"
    return {**exported[0], "cells": cells}


class LiveService:
    """A whole `python -m service` (API and workers) on a free port, for clients over HTTP."""

    def __init__(self, settings: Settings, start: Callable[..., ServiceProcess]) -> None:
        self.settings = settings.model_copy(
            update={"port": free_port(), "events_poll_seconds": 0.05}
        )
        self.process = start(self.settings)
        self.url = f"http://127.0.0.1:{self.settings.port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/health", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, timeout=120, interval=0.3, what=f"the service at {self.url}")


# Faults ------------------------------------------------------------------------------------


def epochs_recorded(client: Any, experiment_id: str) -> int:
    return len(client.get(f"/experiments/{experiment_id}/history").json()["epochs"])


def create_queued(db: Database, *, max_attempts: int = 3, name: str = "queued") -> str:
    """A queued experiment written straight to the database (no queue delivery); its id."""
    with db.scope() as session:
        return repository.create_experiment(
            session,
            name=name,
            description=None,
            spec=tiny_spec(),
            summary={},
            client_id="tests",
            max_attempts=max_attempts,
        ).id


# A class: a teacher (API_TOKEN) and people added through the API --------------------------

ADMIN = "teacher-s3cret"


def class_bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Class:
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, role: str = "student", *, admin: str = ADMIN) -> str:
        response = self.client.post(
            "/people", json={"name": name, "role": role}, headers=class_bearer(admin)
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        self.tokens[name] = body["token"]
        self.ids[name] = body["id"]
        return str(body["token"])

    def as_(self, name: str) -> dict[str, str]:
        return class_bearer(self.tokens[name] if name != "admin" else ADMIN)


# The app's routes ----------------------------------------------------------------------------
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def api_routes(app: FastAPI) -> list[tuple[str, set[str]]]:
    """(full path, methods) of every APIRoute, those of included routers too.

    FastAPI 0.16x keeps an included router as one branch in `app.routes`; its public
    `iter_route_contexts` flattens the branches and gives each route its prefixed path.
    """
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    if flatten is None:  # older FastAPI copies included routes into app.routes
        return [(r.path, r.methods) for r in app.routes if isinstance(r, APIRoute)]
    return [
        (context.path, context.methods or set())
        for context in flatten(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def endpoints(app: FastAPI) -> list[tuple[str, str, bool]]:
    """Every (method, path, is_prediction) the app serves, path parameters given a dummy id.

    Predictions are reads whatever their method: the issue keeps them open with the reads.
    """
    found = []
    for route_path, methods in api_routes(app):
        path = re.sub(r"\{[^}]*\}", "dummy", route_path)
        # The inference protocol's POSTs (infer, the repository index) are reads too.
        prediction = "predict" in route_path or route_path.startswith("/v2")
        found.extend((method, path, prediction) for method in sorted(methods))
    return found


def writes(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path, prediction in endpoints(app)
        if method in WRITE_METHODS and not prediction
    ]


class KeptMessages(logging.Handler):
    """A log handler that keeps each record's message, for tests that read what was logged."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
