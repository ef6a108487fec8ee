"""`mnist-lab` (python -m mnist_lab) against a live service: each command, --json, and the exit
codes 0 succeeded, 1 failed or cancelled, 2 usage, 3 refused with the service's message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from service.config import Settings
from tests.factories import tiny_spec
from tests.helpers import REPO, STROKE, LiveService, ServiceProcess, notebook_of, wait_for

CELL = """\
%matplotlib inline
model = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.summary()
model.fit(X_train[:400], y_train[:400], epochs=2, validation_split=0.25)
"""


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mnist_lab", *args]


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "MNIST_LAB_URL": url, "PYTHONPATH": str(REPO)}


def _run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(*args), capture_output=True, text=True, env=_env(url), cwd=REPO, timeout=300
    )


def test_usage_errors_exit_2() -> None:
    assert _run("http://127.0.0.1:9").returncode == 2
    assert _run("http://127.0.0.1:9", "frobnicate").returncode == 2
    missing = _run("http://127.0.0.1:9", "submit", "no-such-file.py")
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        "mnist-lab: no such file: no-such-file.py",
    )


def test_the_commands_against_a_live_service(
    settings: Settings, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    url = LiveService(settings, start_service).url
    cell = tmp_path / "cell.py"
    cell.write_text(CELL)

    submitted = _run(url, "--json", "submit", str(cell), "--follow")
    assert submitted.returncode == 0, submitted.stderr
    (run,) = json.loads(submitted.stdout)
    assert (run["name"], run["status"]) == ("cell", "succeeded")
    assert run["spec"]["fit"]["train_size"] == 400
    assert "2/2" in submitted.stderr or submitted.stderr == ""  # no bar with --json

    followed = _run(url, "submit", str(cell), "--follow", "--name", "shown")
    assert followed.returncode == 0, followed.stderr
    assert "2/2" in followed.stderr  # the epoch bar
    assert "succeeded  shown test accuracy" in followed.stdout

    listed = _run(url, "ls", "--status", "succeeded")
    assert run["id"] in listed.stdout
    mine = json.loads(_run(url, "--json", "ls", "--mine").stdout)
    assert run["id"] in {item["id"] for item in mine}

    shown = _run(url, "show", run["id"])
    assert "Total params: 7,850" in shown.stdout

    history = _run(url, "history", run["id"], "--csv")
    lines = history.stdout.splitlines()
    assert lines[0] == "epoch,loss,accuracy,val_loss,val_accuracy,seconds"
    epochs = httpx.get(f"{url}/experiments/{run['id']}/history").json()["epochs"]
    assert [float(line.split(",")[1]) for line in lines[1:]] == [e["loss"] for e in epochs]

    image = tmp_path / "one.png"
    Image.fromarray(np.array(STROKE, dtype=np.uint8)).save(image)
    predicted = _run(url, "predict", str(image), "--model", run["id"])
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.startswith(f"{image}: ")

    refused = _run(url, "cancel", run["id"])
    assert refused.returncode == 3
    assert refused.stderr.startswith("mnist-lab: ")
    assert "finished" in refused.stderr or "already" in refused.stderr

    bad = tmp_path / "bad.py"
    bad.write_text("model = keras.Sequential([keras.layers.Dense(units=n)])\n")
    unread = _run(url, "submit", str(bad))
    assert unread.returncode == 3
    assert "line 1, column 52: 'n' is not assigned a value" in unread.stderr

    book = tmp_path / "chapter.ipynb"
    book.write_text(json.dumps(notebook_of(tiny_spec())))
    dry = _run(url, "submit", str(book), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("tiny: 7,850 parameters, 2 layers, 2 epochs")

    spec = tmp_path / "long.json"
    spec.write_text(json.dumps(tiny_spec(epochs=100, train_size=2000)))
    following = subprocess.Popen(
        _command("submit", str(spec), "--follow"),
        env=_env(url),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def running() -> Any:
            assert following.poll() is None, following.communicate()
            data = httpx.get(f"{url}/experiments", params={"status": "running"}).json()["data"]
            return data[0]["id"] if data else None

        long_id = wait_for(running, timeout=240, interval=0.5, what="the long run to start")
        # The spec names itself: its name, not the file's (long).
        assert httpx.get(f"{url}/experiments/{long_id}").json()["name"] == "tiny"
        cancelled = _run(url, "cancel", long_id)
        assert cancelled.returncode == 0, cancelled.stderr
        assert following.wait(timeout=240) == 1
    finally:
        if following.poll() is None:
            following.kill()
        following.communicate()


def test_people_add_prints_the_sheet_and_a_students_token_works(
    settings: Settings, start_service: Callable[..., ServiceProcess]
) -> None:
    url = LiveService(settings.model_copy(update={"api_token": "teacher"}), start_service).url
    added = _run(url, "--token", "teacher", "people", "add", "alice", "bob")
    assert added.returncode == 0, added.stderr
    header, *rows = added.stdout.splitlines()
    assert header == "name,role,token"
    sheet = {row.split(",")[0]: row.split(",") for row in rows}
    assert sorted(sheet) == ["alice", "bob"]
    assert sheet["alice"][1] == "student"
    alice = sheet["alice"][2]
    assert _run(url, "--token", alice, "ls", "--mine").returncode == 0
    refused = _run(url, "--token", alice, "people", "add", "carol")
    assert refused.returncode == 3  # a student may not add people: the service's 403
    assert "only a teacher" in refused.stderr or "teacher" in refused.stderr
    assert _run(url, "--token", "wrong", "people", "add", "dan").returncode == 3
