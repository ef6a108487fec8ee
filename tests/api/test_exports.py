"""Reproduce and take home, without a worker: spec hash and seed, reruns and their verdict,
the notebook downloads, the model download.

Trainings are recorded the way a worker records them (claim, epochs, succeed), with made-up
numbers: the verdict is about comparing histories, which needs no TensorFlow. The real worker's
reruns and the script's history are in tests/worker/test_reproduction.py.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.api.app import create_app
from service.config import Settings
from service.db import claims, leases
from service.db.models import ExperimentRow
from service.domain import EpochRecord
from service.spec.experiment import ExperimentSpec
from service.spec.fingerprint import spec_hash
from service.storage import model_key
from tests.factories import tiny_spec
from tests.helpers import runtime_of, submit

UNKNOWN_ID = "0123456789abcdef0123456789abcdef"
VERSIONS = {"python": "3.12.3", "tensorflow": "2.21.0", "keras": "3.15.1", "numpy": "2.4.6"}
HISTORY = [(0.9, 0.7, 0.5, 0.85), (0.4, 0.88, 0.35, 0.9)]
Epochs = list[tuple[float, float, float, float]]


def rerun(client: TestClient, experiment_id: str) -> dict[str, Any]:
    response = client.post(f"/experiments/{experiment_id}/rerun")
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def train_as_a_worker(
    client: TestClient,
    experiment_id: str,
    tmp_path: Path,
    *,
    epochs: Epochs = HISTORY,
    versions: dict[str, str] = VERSIONS,
) -> bytes:
    """Claim, record `epochs`, store a model file and succeed; returns the file's bytes."""
    runtime = runtime_of(client)
    with runtime.db.scope() as session:
        claim = claims.claim(session, experiment_id=experiment_id, worker="t", lease_seconds=60)
    assert claim is not None
    model = f"a .keras file of {experiment_id}".encode() * 1000
    local = tmp_path / f"{experiment_id}.keras"
    local.write_bytes(model)
    with runtime.db.scope() as session:
        for number, (loss, accuracy, val_loss, val_accuracy) in enumerate(epochs, start=1):
            record = EpochRecord(number, loss, accuracy, val_loss, val_accuracy, 1.0, claim.attempt)
            leases.record_epoch(
                session,
                experiment_id=experiment_id,
                attempt=claim.attempt,
                record=record,
                lease_seconds=60,
            )
        assert leases.succeed(
            session,
            experiment_id=experiment_id,
            attempt=claim.attempt,
            test_loss=0.3,
            test_accuracy=0.9,
            model_uri=runtime.store.put_file(local, model_key(experiment_id)),
            versions=versions,
        )
    return model


def reproduction(client: TestClient, experiment_id: str) -> dict[str, Any]:
    body = client.get(f"/experiments/{experiment_id}").json()
    found: dict[str, Any] = body["reproduction"]
    return found


def test_submission_records_the_spec_hash_and_seed(client: TestClient) -> None:
    spec = tiny_spec(seed=7)
    created = submit(client, spec)
    spec.pop("name")
    assert created["spec_hash"] == spec_hash(ExperimentSpec.model_validate(spec))
    assert created["seed"] == 7
    read = client.get(f"/experiments/{created['id']}").json()
    assert (read["spec_hash"], read["seed"], read["rerun_of"]) == (created["spec_hash"], 7, None)
    assert read["reproduction"] is None
    spelled_out = tiny_spec(seed=7)
    spelled_out["compile"]["optimizer"] = {"type": "Adam", "learning_rate": 0.001}
    assert submit(client, spelled_out)["spec_hash"] == created["spec_hash"]
    assert submit(client, tiny_spec(seed=8))["spec_hash"] != created["spec_hash"]


def test_rerun_queues_the_same_spec_and_waits_to_compare(client: TestClient) -> None:
    original = submit(client)
    again = rerun(client, original["id"])
    assert again["id"] != original["id"]
    assert again["status"] == "queued"
    assert again["rerun_of"] == original["id"]
    for same in ("description", "spec", "spec_hash", "seed", "summary"):
        assert again[same] == original[same], same
    # Told apart from its original, and from the next rerun, in lists and pickers.
    assert again["name"] == f"{original['name']} (rerun 1)"
    assert rerun(client, original["id"])["name"] == f"{original['name']} (rerun 2)"
    verdict = reproduction(client, again["id"])
    assert verdict["reproduced"] is None
    assert "the original is queued" in verdict["explanation"]
    assert verdict["first_difference"] is None


def test_a_rerun_keeps_the_originals_tags(client: TestClient) -> None:
    original = submit(client, {**tiny_spec(), "tags": ["class-3", "dropout"]})
    again = rerun(client, original["id"])
    assert again["tags"] == ["class-3", "dropout"]
    listed = client.get("/experiments", params={"tag": "class-3"}).json()["data"]
    assert {e["id"] for e in listed} == {original["id"], again["id"]}


def test_training_records_every_version(client: TestClient, tmp_path: Path) -> None:
    experiment_id = submit(client)["id"]
    train_as_a_worker(client, experiment_id, tmp_path)
    assert client.get(f"/experiments/{experiment_id}").json()["versions"] == VERSIONS


def test_an_identical_history_is_reproduced(client: TestClient, tmp_path: Path) -> None:
    original = submit(client)["id"]
    train_as_a_worker(client, original, tmp_path)
    again = rerun(client, original)["id"]
    assert reproduction(client, again)["reproduced"] is None  # queued: not comparable yet
    train_as_a_worker(client, again, tmp_path)
    assert reproduction(client, again) == {
        "reproduced": True,
        "explanation": "every epoch's loss, accuracy, val_loss, val_accuracy are identical",
        "first_difference": None,
        "versions_differ": False,
        "original_versions": VERSIONS,
    }


@pytest.mark.parametrize(
    ("epochs", "difference"),
    [
        (
            [HISTORY[0], (0.4, 0.88, 0.36, 0.9)],
            {"epoch": 2, "metric": "val_loss", "original": 0.35, "rerun": 0.36},
        ),
        ([HISTORY[0]], {"epoch": 2, "metric": "missing", "original": None, "rerun": None}),
    ],
    ids=["value", "epochs"],
)
def test_a_different_history_names_the_first_difference(
    client: TestClient, tmp_path: Path, epochs: Epochs, difference: dict[str, Any]
) -> None:
    original = submit(client)["id"]
    train_as_a_worker(client, original, tmp_path)
    again = rerun(client, original)["id"]
    train_as_a_worker(client, again, tmp_path, epochs=epochs)
    verdict = reproduction(client, again)
    assert verdict["reproduced"] is False
    assert verdict["first_difference"] == difference
    assert verdict["versions_differ"] is False
    assert "with the same versions" in verdict["explanation"]


def test_different_versions_explain_a_difference(client: TestClient, tmp_path: Path) -> None:
    original = submit(client)["id"]
    train_as_a_worker(client, original, tmp_path)
    again = rerun(client, original)["id"]
    newer = VERSIONS | {"tensorflow": "2.22.0"}
    train_as_a_worker(
        client, again, tmp_path, epochs=[(0.8, *HISTORY[0][1:]), HISTORY[1]], versions=newer
    )
    verdict = reproduction(client, again)
    assert verdict["reproduced"] is False
    assert verdict["versions_differ"] is True
    assert verdict["first_difference"]["metric"] == "loss"
    assert "tensorflow 2.21.0 vs 2.22.0" in verdict["explanation"]


def test_a_rerun_of_a_deleted_original_cannot_compare(client: TestClient) -> None:
    original = submit(client)["id"]
    again = rerun(client, original)["id"]
    assert client.post(f"/experiments/{original}/cancel").status_code == 202
    assert client.delete(f"/experiments/{original}").status_code == 204
    body = client.get(f"/experiments/{again}").json()
    assert body["rerun_of"] == original
    assert body["reproduction"]["reproduced"] is None
    assert "was deleted" in body["reproduction"]["explanation"]


def test_a_rerun_meets_todays_limits(
    client: TestClient, make_settings: Callable[..., Settings]
) -> None:
    original = submit(client, tiny_spec(epochs=3))["id"]
    with TestClient(create_app(make_settings(max_epochs=2))) as strict:
        response = strict.post(f"/experiments/{original}/rerun")
    assert response.status_code == 422
    assert "3 epochs is over the limit of 2 (MAX_EPOCHS)" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/rerun"),
        ("GET", "/notebook.py"),
        ("GET", "/notebook.ipynb"),
        ("GET", "/model"),
    ],
)
def test_unknown_experiment_is_404(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, f"/experiments/{UNKNOWN_ID}{path}")
    assert response.status_code == 404
    assert response.json()["error"] == "experiment_not_found"


def test_notebook_script_downloads_as_python(client: TestClient) -> None:
    experiment_id = submit(client)["id"]
    response = client.get(f"/experiments/{experiment_id}/notebook.py")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/x-python; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="tiny-{experiment_id[:8]}.py"'
    )
    ast.parse(response.text)
    assert f"Experiment `{experiment_id}`" in response.text
    assert "not trained yet (queued)" in response.text


def test_notebook_downloads_as_valid_nbformat(client: TestClient) -> None:
    experiment_id = submit(client)["id"]
    response = client.get(f"/experiments/{experiment_id}/notebook.ipynb")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ipynb+json"
    assert response.headers["content-disposition"].endswith(f'{experiment_id[:8]}.ipynb"')
    document = nbformat.reads(response.text, as_version=4)
    nbformat.validate(document)
    assert any("model.fit(" in cell.source for cell in document.cells)


@pytest.mark.parametrize("path", ["/notebook.py", "/notebook.ipynb"])
def test_a_stored_spec_that_no_longer_validates_is_422(client: TestClient, path: str) -> None:
    submitted = submit(client)
    experiment_id, stored = submitted["id"], submitted["spec"]
    # As a spec stored by an older version might be: a layer type this one does not know.
    stored["layers"].insert(1, {"type": "GaussianNoise", "stddev": 0.1})
    with runtime_of(client).db.scope() as session:
        session.execute(
            update(ExperimentRow).where(ExperimentRow.id == experiment_id).values(spec=stored)
        )
    response = client.get(f"/experiments/{experiment_id}{path}")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_spec"
    assert body["detail"].startswith(
        f"experiment {experiment_id}'s stored spec is no longer accepted (1 problems), so it "
        "cannot be written as Keras"
    )
    assert body["details"][0]["loc"][:2] == ["layers", 1]


def test_model_downloads_once_trained(client: TestClient, tmp_path: Path) -> None:
    experiment_id = submit(client)["id"]
    refused = client.get(f"/experiments/{experiment_id}/model")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"experiment {experiment_id} is queued; its model can be downloaded once it has succeeded"
    )
    # A JSON error, not a file: nothing tells a client (curl -OJ) to save it under a name.
    assert refused.headers["content-type"] == "application/json"
    assert "content-disposition" not in refused.headers
    assert client.get(f"/experiments/{experiment_id}").json()["model_available"] is False
    model = train_as_a_worker(client, experiment_id, tmp_path)
    response = client.get(f"/experiments/{experiment_id}/model")
    assert response.status_code == 200
    assert response.content == model
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(model))
    assert response.headers["content-disposition"] == (
        f'attachment; filename="tiny-{experiment_id[:8]}.keras"'
    )


def test_a_cancelled_experiment_has_no_model(client: TestClient) -> None:
    experiment_id = submit(client)["id"]
    client.post(f"/experiments/{experiment_id}/cancel")
    response = client.get(f"/experiments/{experiment_id}/model")
    assert response.status_code == 409
    assert "is cancelled, so it has no trained model" in response.json()["detail"]


def test_a_model_file_lost_from_the_store_is_404(client: TestClient, tmp_path: Path) -> None:
    experiment_id = submit(client)["id"]
    train_as_a_worker(client, experiment_id, tmp_path)
    runtime_of(client).store.delete_prefix(model_key(experiment_id))
    response = client.get(f"/experiments/{experiment_id}/model")
    assert response.status_code == 404
    assert "missing from the model store" in response.json()["detail"]
