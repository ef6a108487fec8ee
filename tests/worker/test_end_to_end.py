"""Through the HTTP API with a real worker process: submit, watch, score, find the model."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from service.config import Settings
from service.storage import model_key, store_from_settings
from tests.factories import leaky_relu_spec, tiny_spec
from tests.helpers import ServiceProcess, wait_finished


def test_training_end_to_end(
    client: TestClient, settings: Settings, worker: ServiceProcess
) -> None:
    epochs = 4
    created = client.post("/experiments", json=tiny_spec(epochs=epochs, train_size=6000))
    assert created.status_code == 202
    experiment_id = created.json()["id"]

    seen_lengths: list[int] = []
    seen_running = False
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        history = client.get(f"/experiments/{experiment_id}/history").json()
        length = len(history["epochs"])
        if not seen_lengths or seen_lengths[-1] != length:
            seen_lengths.append(length)
        seen_running |= history["status"] == "running"
        if history["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.05)
    assert history["status"] == "succeeded", worker.log()[-3000:]
    assert seen_running
    # The history grew while the job ran, epoch by epoch, not all at once at the end.
    assert len([n for n in seen_lengths if 0 < n < epochs]) >= 2, seen_lengths
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3, 4]
    for epoch in history["epochs"]:
        assert 0 < epoch["loss"] < 5
        assert 0 <= epoch["accuracy"] <= 1
        assert 0 <= epoch["val_accuracy"] <= 1
        assert epoch["seconds"] > 0
    assert history["epochs"][-1]["loss"] < history["epochs"][0]["loss"]

    experiment = client.get(f"/experiments/{experiment_id}").json()
    assert 0.8 < experiment["test_accuracy"] <= 1
    assert experiment["test_loss"] > 0
    assert experiment["model_available"] is True
    assert experiment["versions"]["keras"].startswith("3.")
    assert experiment["versions"]["tensorflow"]
    assert "fitting with TensorFlow's kernels" in worker.log()  # TRAINING_PATH=exact, the default
    assert experiment["started_at"] <= experiment["finished_at"]
    assert [a["start_epoch"] for a in experiment["attempts"]] == [0]

    store = store_from_settings(settings)
    assert store.exists(model_key(experiment_id))
    if store.is_local:
        assert Path(settings.models_dir, model_key(experiment_id)).stat().st_size > 0


def test_same_spec_and_seed_give_the_same_history(
    client: TestClient, worker: ServiceProcess
) -> None:
    ids = [client.post("/experiments", json=tiny_spec(seed=7)).json()["id"] for _ in range(2)]
    other = client.post("/experiments", json=tiny_spec(seed=8)).json()["id"]
    for experiment_id in [*ids, other]:
        assert wait_finished(client, experiment_id)["status"] == "succeeded"
    histories = [
        [
            (e["loss"], e["val_loss"])
            for e in client.get(f"/experiments/{i}/history").json()["epochs"]
        ]
        for i in [*ids, other]
    ]
    assert histories[0] == histories[1]
    assert histories[0] != histories[2]


def test_missing_data_fails_the_experiment_not_the_worker(
    make_settings: object, start_service: object, tmp_path: Path
) -> None:
    from service.api.app import create_app

    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not an npz")
    settings = make_settings(mnist_path=str(broken))  # type: ignore[operator]
    worker = start_service(settings, "worker")  # type: ignore[operator]
    with TestClient(create_app(settings)) as client:
        first = client.post("/experiments", json=tiny_spec()).json()["id"]
        failed = wait_finished(client, first)
        assert failed["status"] == "failed"
        assert "MNIST_PATH" in failed["error"]
        assert "not a readable .npz" in failed["error"]
        second = client.post("/experiments", json=tiny_spec()).json()["id"]
        assert wait_finished(client, second)["status"] == "failed"
        assert worker.process.poll() is None  # the worker survived both


def test_training_path_xla_reaches_the_training_process(
    client: TestClient, settings: Settings, start_service: Callable[..., ServiceProcess]
) -> None:
    worker = start_service(settings.model_copy(update={"training_path": "xla"}), "worker")
    spec = leaky_relu_spec(fit={"epochs": 1, "train_size": 1000, "validation_size": 200})
    experiment_id = client.post("/experiments", json=spec).json()["id"]
    experiment = wait_finished(client, experiment_id, timeout=180)
    assert experiment["status"] == "succeeded", worker.log()[-3000:]
    assert "fitting with XLA's compiled loop, 64 batches per graph call" in worker.log()
