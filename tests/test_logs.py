"""The log a teacher watches: a line per experiment queued, started, per epoch and ended; no
TensorFlow start-up chatter, no line twice; an access log when asked for."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from service import logs
from service.config import Settings
from service.domain import EpochRecord
from service.logs import uvicorn_config
from service.worker.context import epoch_line
from service.worker.quiet import NOISE
from tests.helpers import ServiceProcess, free_port, submit, wait_finished, wait_for


def test_epoch_line_reads_like_keras() -> None:
    record = EpochRecord(
        3, loss=0.41, accuracy=0.87, val_loss=0.38, val_accuracy=0.89, seconds=1.94
    )

    assert epoch_line(record, 10) == (
        "epoch 3/10 loss 0.4100 acc 0.8700 val_loss 0.3800 val_acc 0.8900 1.9 s"
    )
    no_validation = EpochRecord(
        1, loss=0.5, accuracy=0.8, val_loss=None, val_accuracy=None, seconds=2
    )
    assert epoch_line(no_validation, 2) == "epoch 1/2 loss 0.5000 acc 0.8000 2.0 s"


@pytest.mark.parametrize(
    ("line", "noise"),
    [
        (b"WARNING: All log messages before absl::InitializeLog() is called are written", True),
        (b"I0000 00:00:1796009021.042825    1510 port.cc:153] oneDNN custom operations", True),
        (b"E0000 00:00:1796009021.042825    1510 cuda.cc:1] a real error", False),
        (b"2026-11-30 03:24:02,267 INFO [training 1510] experiment 3f epoch 1/2", False),
        (b"Traceback (most recent call last):", False),
    ],
)
def test_only_tensorflow_start_up_chatter_is_filtered(line: bytes, noise: bool) -> None:
    assert bool(NOISE.match(line)) is noise


@pytest.mark.parametrize(
    ("log_format", "line"),
    [("text", r".+ INFO \[training \d+\] epoch 1"), ("json", r'\{.*"message": "epoch 1".*\}')],
)
def test_training_processes_log_in_the_workers_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], log_format: str, line: str
) -> None:
    monkeypatch.setenv("LOG_FORMAT", log_format)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure(text_format=logs.role_format("training"))
        logging.getLogger("service.training").info("epoch 1")
    finally:
        root.handlers, root.level = saved[0], saved[1]
    assert re.fullmatch(line, capsys.readouterr().err.strip())


def test_submitting_logs_one_queued_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        experiment = submit(client)

    lines = [r.getMessage() for r in caplog.records if experiment["id"] in r.getMessage()]
    assert len(lines) == 1
    assert re.fullmatch(
        rf"experiment {experiment['id']} 'tiny' queued: 2 epochs, [\d,]+ parameters, client .+",
        lines[0],
    )


@pytest.mark.parametrize(("switch", "level"), [(False, "WARNING"), (True, "INFO")])
def test_access_log_switch_sets_uvicorns_access_level(switch: bool, level: str) -> None:
    config = uvicorn_config(access_log=switch)
    assert config["loggers"]["uvicorn.access"]["level"] == level
    assert config["loggers"]["uvicorn.error"]["level"] == "WARNING"


def test_a_class_watching_the_log_sees_each_step_once(
    settings: Settings, start_service: Callable[..., ServiceProcess]
) -> None:
    port = free_port()
    service = start_service(settings.model_copy(update={"port": port}), "--access-log")
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    wait_for(lambda: _answers(http), timeout=90, what="the API")
    experiment_id = submit(http)["id"]
    wait_finished(http, experiment_id)
    wait_for(lambda: "succeeded: test accuracy" in service.log(), timeout=30, what="the end line")

    log = service.log()
    assert f"experiment {experiment_id} 'tiny' queued" in log
    assert f"experiment {experiment_id} starts on worker" in log
    assert re.search(rf"experiment {experiment_id} epoch 1/2 loss \S+ acc \S+ val_loss", log)
    assert re.search(rf"experiment {experiment_id} succeeded: test accuracy 0\.\d{{4}} after", log)
    assert '"POST /experiments HTTP/1.1" 202' in log
    for chatter in ("absl::InitializeLog", "oneDNN custom operations", "Executing service.jobs"):
        assert chatter not in log
    # Each line once, timestamps and process ids aside (access lines repeat by nature).
    said = Counter(
        re.sub(r"^\S+ \S+ (\S+) \[(\S+) \d+\]", r"\1 [\2]", line)
        for line in log.splitlines()
        if "uvicorn.access" not in line
    )
    assert [line for line, times in said.items() if times > 1] == []


def _answers(http: httpx.Client) -> bool:
    try:
        return http.get("/health").status_code == 200
    except httpx.HTTPError:
        return False
