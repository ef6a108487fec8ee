"""Whose work a list shows (?owner=me, ?owner=<name>), and CLASS_READS=own, which keeps each
student to their own work (an exam) while a teacher still reads everyone's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import tiny_spec
from tests.helpers import ADMIN, Class, class_bearer, publish, save_untrained_model, submit

IMAGE = [[0.0] * 28 for _ in range(27)] + [[1.0] * 28]


def _school(app_with: Callable[..., TestClient], **settings: Any) -> Class:
    school = Class(app_with(api_token=ADMIN, **settings))
    for name in ("alice", "bob"):
        school.add(name)
    school.add("tess", "teacher")
    return school


def _names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(item["name"] for item in response.json()["data"])


def test_owner_filters_the_lists(app_with: Callable[..., TestClient]) -> None:
    school = _school(app_with)
    submit(school.client, {**tiny_spec(), "name": "a1"}, headers=school.as_("alice"))
    submit(school.client, {**tiny_spec(), "name": "b1"}, headers=school.as_("bob"))
    submit(school.client, {**tiny_spec(), "name": "t1"}, headers=class_bearer(ADMIN))
    client = school.client
    assert _names(client.get("/experiments")) == ["a1", "b1", "t1"]
    assert _names(client.get("/experiments?owner=me", headers=school.as_("alice"))) == ["a1"]
    assert _names(client.get("/experiments?owner=me", headers=class_bearer(ADMIN))) == ["t1"]
    assert _names(client.get("/experiments?owner=bob")) == ["b1"]
    assert _names(client.get("/experiments?owner=nobody-here")) == []
    base = tiny_spec()
    del base["name"]
    study = client.post(
        "/studies",
        json={"name": "bs", "base": base, "space": {"fit.seed": [1]}},
        headers=school.as_("bob"),
    )
    assert study.status_code == 202, study.text
    assert study.json()["owner"] == "bob"
    assert _names(client.get("/studies?owner=bob")) == ["bs"]
    assert _names(client.get("/studies?owner=me", headers=school.as_("alice"))) == []


def test_class_reads_own_keeps_a_student_to_their_own_work(
    app_with: Callable[..., TestClient],
) -> None:
    school = _school(app_with, class_reads="own")
    client = school.client
    mine = submit(client, {**tiny_spec(), "name": "a1"}, headers=school.as_("alice"))["id"]
    theirs = submit(client, {**tiny_spec(), "name": "b1"}, headers=school.as_("bob"))["id"]
    alice = school.as_("alice")
    assert _names(client.get("/experiments", headers=alice)) == ["a1"]
    assert _names(client.get("/experiments?owner=bob", headers=alice)) == ["a1"]
    assert client.get(f"/experiments/{mine}", headers=alice).status_code == 200
    for path in (f"/experiments/{theirs}", f"/experiments/{theirs}/history"):
        refused = client.get(path, headers=alice)
        assert refused.status_code == 403, refused.text
        assert "belongs to bob" in refused.json()["detail"]
        assert "CLASS_READS=own" in refused.json()["detail"]
    assert client.get(f"/experiments/{theirs}").status_code == 401  # a token is needed
    assert _names(client.get("/experiments", headers=school.as_("tess"))) == ["a1", "b1"]
    assert client.get(f"/experiments/{theirs}", headers=school.as_("tess")).status_code == 200


def test_class_reads_own_keeps_a_students_predictions_to_their_own_models(
    app_with: Callable[..., TestClient], tmp_path: Path
) -> None:
    school = _school(app_with, class_reads="own")
    client = school.client
    alice, bob, tess = school.as_("alice"), school.as_("bob"), school.as_("tess")
    model_file = save_untrained_model(tmp_path / "model.keras")
    alices = publish(client, model_file, name="a1", test_accuracy=0.8, headers=alice)
    bobs = publish(client, model_file, name="b1", test_accuracy=0.9, headers=bob)  # best, latest
    assert client.put("/models/bobs-pick", json={"experiment_id": bobs}, headers=bob).is_success

    def predict(reference: str, headers: dict[str, str]) -> Any:
        return client.post("/predict", json={"image": IMAGE, "model": reference}, headers=headers)

    # The teacher predicts with everything (and so bob's model is warm for the hot path).
    for reference in ("best", "latest", "bobs-pick", bobs):
        assert predict(reference, tess).json()["model"]["experiment_id"] == bobs
    for reference in ("best", "latest", alices):
        assert predict(reference, alice).json()["model"]["experiment_id"] == alices
    for reference, detail in ((bobs, f"experiment {bobs}"), ("bobs-pick", "'bobs-pick' names")):
        refused = predict(reference, alice)
        assert refused.status_code == 403, refused.text
        assert detail in refused.json()["detail"]
        assert "belongs to bob" in refused.json()["detail"]
        assert "CLASS_READS=own" in refused.json()["detail"]
    upload = client.post(
        "/predict/upload",
        files={"file": ("digit.png", b"", "image/png")},
        data={"model": "bobs-pick"},
        headers=alice,
    )
    assert upload.status_code == 403, upload.text
    pixels = [pixel for row in IMAGE for pixel in row]
    tensor = {"name": "images", "datatype": "FP32", "shape": [1, 28, 28], "data": pixels}
    infer = client.post("/v2/models/bobs-pick/infer", json={"inputs": [tensor]}, headers=alice)
    assert infer.status_code == 403, infer.text
    assert predict("best", {}).status_code == 401  # no token, though its model is warm
