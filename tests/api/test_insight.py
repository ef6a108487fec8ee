"""Insight over HTTP with a real worker: a finished experiment's evaluation, layer health,
diagnostics and pictures; an old experiment's evaluation made on request by a worker."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import delete

from service.config import Settings
from service.db import claims, leases
from service.db.models import EvaluationRow
from service.db.session import Database
from service.jobs.queue import JobQueue
from service.storage import model_key, store_from_settings
from tests.factories import tiny_spec
from tests.helpers import MNIST_PATH, ServiceProcess, wait_finished, wait_for

TEST_IMAGES = 10_000
INSIGHT_PATHS = [
    "evaluation",
    "confusion.svg",
    "confusion.png",
    "mistakes.png",
    "layers",
    "layers.svg",
    "layers.png",
]


def small_net(**fit: Any) -> dict[str, Any]:
    spec = tiny_spec(epochs=3, **fit)
    spec["layers"] = [
        {"type": "Flatten"},
        {"type": "Dense", "units": 32, "activation": "relu"},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ]
    return spec


def assert_svg(response: Any) -> ElementTree.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    return ElementTree.fromstring(response.text)  # well-formed XML


def assert_is_the_models_mistake(settings: Settings, experiment_id: str, mistakes: list) -> None:
    """Offline: the stored model really reads these test images as the evaluation says."""
    import keras

    from service.ml.data import load_mnist

    path = store_from_settings(settings).get_file(
        model_key(experiment_id), Path(settings.work_dir) / "check.keras"
    )
    model = keras.models.load_model(path, compile=False)
    mnist = load_mnist(MNIST_PATH)
    indices = [mistake["index"] for mistake in mistakes[:5]]
    probabilities = np.asarray(model(mnist.x_test[indices] / 255.0))
    for mistake, row in zip(mistakes[:5], probabilities, strict=True):
        assert mistake["true"] == mnist.y_test[mistake["index"]]
        assert row.argmax() == mistake["predicted"] != mistake["true"]
        assert row[mistake["predicted"]] == pytest.approx(mistake["probability"], abs=1e-5)


def test_finished_experiment_explains_itself(
    client: TestClient, settings: Settings, worker: ServiceProcess
) -> None:
    experiment_id = client.post("/experiments", json=small_net()).json()["id"]
    finished = wait_finished(client, experiment_id)
    assert finished["status"] == "succeeded", worker.log()[-3000:]

    evaluation = client.get(f"/experiments/{experiment_id}/evaluation").json()
    confusion = np.array(evaluation["confusion"])
    assert confusion.shape == (10, 10)
    assert confusion.sum() == TEST_IMAGES
    assert np.trace(confusion) / TEST_IMAGES == pytest.approx(finished["test_accuracy"], abs=1e-12)
    assert evaluation["test_accuracy"] == finished["test_accuracy"]
    assert evaluation["test_loss"] == finished["test_loss"]
    assert [c["support"] for c in evaluation["classes"]] == confusion.sum(axis=1).tolist()
    assert evaluation["macro_f1"] == pytest.approx(
        np.mean([c["f1"] for c in evaluation["classes"]])
    )
    mistakes = evaluation["mistakes"]
    assert len(mistakes) == 25
    assert [m["probability"] for m in mistakes] == sorted(
        (m["probability"] for m in mistakes), reverse=True
    )
    assert all(m["true_probability"] < m["probability"] for m in mistakes)
    assert_is_the_models_mistake(settings, experiment_id, mistakes)

    layers = client.get(f"/experiments/{experiment_id}/layers").json()
    assert layers["probe_images"] == 512
    assert [epoch["epoch"] for epoch in layers["epochs"]] == [1, 2, 3]
    for epoch in layers["epochs"]:
        assert [layer["name"] for layer in epoch["layers"]] == ["dense", "dense_1"]
        assert epoch["layers"][0]["dead_fraction"] is not None
        assert epoch["layers"][0]["gradient_norm"] > 0

    diagnostics = client.get(f"/experiments/{experiment_id}").json()["diagnostics"]
    assert isinstance(diagnostics, list)
    assert all(finding["evidence"]["epochs"] for finding in diagnostics)
    assert client.get("/experiments").json()["data"][0]["diagnostics"] is None  # one GET only

    svg = assert_svg(client.get(f"/experiments/{experiment_id}/confusion.svg"))
    texts = [element.text for element in svg.iter() if element.text]
    assert str(confusion[7, 7]) in texts
    assert "predicted digit" in texts
    assert_svg(client.get(f"/experiments/{experiment_id}/layers.svg"))
    # Every chart has a .png, and a narrow drawing for a phone.
    for chart in ("confusion", "layers"):
        for narrow in (False, True):
            png = client.get(f"/experiments/{experiment_id}/{chart}.png", params={"narrow": narrow})
            assert png.status_code == 200, (chart, png.text)
            assert png.headers["content-type"] == "image/png"
            width = Image.open(io.BytesIO(png.content)).size[0]
            assert (width <= 360) == narrow, (chart, width)

    few = client.get(f"/experiments/{experiment_id}/mistakes.png", params={"n": 3})
    assert few.status_code == 200
    assert few.headers["content-type"] == "image/png"
    assert few.headers["x-mistakes-shown"] == "3"
    assert Image.open(io.BytesIO(few.content)).size[0] == 3 * (84 + 24)
    phone = client.get(f"/experiments/{experiment_id}/mistakes.png", params={"narrow": True})
    assert Image.open(io.BytesIO(phone.content)).size[0] == 3 * (84 + 24)  # 3 a row, not 5
    many = client.get(f"/experiments/{experiment_id}/mistakes.png", params={"n": 40})
    assert many.headers["x-mistakes-shown"] == "25"
    assert "25 most confident" in many.headers["x-mistakes-note"]
    assert Image.open(io.BytesIO(many.content)).size[1] == 5 * (84 + 18 + 8)

    # An experiment trained before evaluations existed: a worker makes its evaluation on request.
    db = Database(settings.database_url)
    with db.scope() as session:
        session.execute(delete(EvaluationRow).where(EvaluationRow.experiment_id == experiment_id))
    db.dispose()
    pending = client.get(f"/experiments/{experiment_id}/evaluation")
    assert pending.status_code == 202
    assert pending.json()["status"] == "pending"
    assert pending.headers["retry-after"]
    assert client.get(f"/experiments/{experiment_id}/mistakes.png").status_code == 202
    ready = wait_for(
        lambda: (
            (r := client.get(f"/experiments/{experiment_id}/evaluation")).status_code == 200 and r
        ),
        timeout=120,
        interval=0.3,
        what="the worker's evaluation",
    )
    assert ready.json()["confusion"] == evaluation["confusion"]
    assert ready.json()["mistakes"] == evaluation["mistakes"]
    # In a slot's warm training process, not an interpreter spawned for it.
    assert re.search(rf"\[training \d+\] evaluated experiment {experiment_id}", worker.log())


def _succeeded_without_evaluation(settings: Settings, client: TestClient) -> str:
    """An experiment finished by an old version: succeeded, a model URI, no evaluation row."""
    experiment_id = client.post("/experiments", json=small_net()).json()["id"]
    db = Database(settings.database_url)
    with db.scope() as session:
        claim = claims.claim(session, experiment_id=experiment_id, worker="old", lease_seconds=60)
        assert claim is not None
        leases.succeed(
            session,
            experiment_id=experiment_id,
            attempt=claim.attempt,
            test_loss=0.3,
            test_accuracy=0.9,
            model_uri="file:///nowhere/model.keras",
            versions={},
        )
    db.dispose()
    return experiment_id


def test_evaluation_on_request_is_left_to_a_worker_and_asked_for_once(
    client: TestClient, settings: Settings
) -> None:
    experiment_id = _succeeded_without_evaluation(settings, client)
    queue = JobQueue(settings.queue_url)
    queue.flush()  # its training's delivery

    for _ in range(3):
        response = client.get(f"/experiments/{experiment_id}/evaluation")
        assert response.status_code == 202  # no worker runs: the API never evaluates itself
    assert client.get(f"/experiments/{experiment_id}/confusion.svg").status_code == 202
    assert queue.pending() == 1  # one evaluation job for four requests


def test_failed_evaluation_is_409_saying_why(
    client: TestClient, settings: Settings, worker: ServiceProcess
) -> None:
    experiment_id = _succeeded_without_evaluation(settings, client)
    assert client.get(f"/experiments/{experiment_id}/evaluation").status_code == 202

    failed = wait_for(
        lambda: (
            (r := client.get(f"/experiments/{experiment_id}/evaluation")).status_code != 202 and r
        ),
        timeout=120,
        interval=0.3,
        what="the evaluation to fail",
    )
    assert failed.status_code == 409
    assert failed.json()["error"] == "evaluation_unavailable"
    assert "evaluation" in failed.json()["detail"]


@pytest.mark.parametrize("path", INSIGHT_PATHS)
def test_insight_of_unknown_experiment_is_404(client: TestClient, path: str) -> None:
    response = client.get(f"/experiments/{'0' * 32}/{path}")
    assert response.status_code == 404
    assert response.json()["error"] == "experiment_not_found"


@pytest.mark.parametrize("path", ["evaluation", "confusion.svg", "confusion.png", "mistakes.png"])
def test_evaluation_of_unfinished_experiment_is_409(client: TestClient, path: str) -> None:
    experiment_id = client.post("/experiments", json=small_net()).json()["id"]
    response = client.get(f"/experiments/{experiment_id}/{path}")
    assert response.status_code == 409
    assert "queued" in response.json()["detail"]


def test_layers_of_queued_experiment_are_empty(client: TestClient) -> None:
    experiment_id = client.post("/experiments", json=small_net()).json()["id"]
    assert client.get(f"/experiments/{experiment_id}/layers").json()["epochs"] == []
    assert_svg(client.get(f"/experiments/{experiment_id}/layers.svg"))
    assert client.get(f"/experiments/{experiment_id}").json()["diagnostics"] == []


def test_mistakes_n_out_of_range_is_422(client: TestClient) -> None:
    experiment_id = client.post("/experiments", json=small_net()).json()["id"]
    assert client.get(f"/experiments/{experiment_id}/mistakes.png?n=0").status_code == 422
