"""Servable models and aliases: GET /models, `best` / `latest` / aliases / ids, PUT and DELETE.

The experiments here are made servable the way a worker leaves them (claim, save the model into
the store, succeed), without training: an untrained net answers just as well for plumbing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from tests.factories import tiny_spec
from tests.helpers import (
    UNKNOWN_ID,
    fail,
    named,
    publish,
    put_alias,
    save_untrained_model,
    submit,
)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_untrained_model(tmp_path_factory.mktemp("untrained") / "model.keras")


def test_list_models_most_accurate_first_with_scores_and_aliases(
    client: TestClient, model_file: Path
) -> None:
    good = publish(client, model_file, name="good", test_accuracy=0.91)
    better = publish(client, model_file, name="better", test_accuracy=0.97)
    submit(client, named(tiny_spec(), "still-queued"))
    fail(client)
    put_alias(client, "production", good)
    put_alias(client, "staging", good)

    response = client.get("/models")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [model["experiment_id"] for model in body["data"]] == [better, good]
    first, second = body["data"]
    assert first["name"] == "better"
    assert first["test_accuracy"] == pytest.approx(0.97)
    assert first["test_loss"] == pytest.approx(0.03)
    assert first["finished_at"] is not None
    assert first["aliases"] == []
    assert second["aliases"] == ["production", "staging"]


def test_list_models_without_any(client: TestClient) -> None:
    submit(client)
    assert client.get("/models").json() == {"data": [], "count": 0}


def test_read_model_by_best_latest_alias_and_id(client: TestClient, model_file: Path) -> None:
    best = publish(client, model_file, name="best-one", test_accuracy=0.97)
    latest = publish(client, model_file, name="latest-one", test_accuracy=0.80)
    put_alias(client, "production", latest)

    def read(reference: str) -> dict[str, Any]:
        response = client.get(f"/models/{reference}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert read("best")["experiment_id"] == best
    assert read("latest")["experiment_id"] == latest
    assert read("production") == {**read(latest), "aliases": ["production"]}
    assert read(best)["name"] == "best-one"
    assert read(best)["aliases"] == []


def test_put_alias_points_and_repoints(client: TestClient, model_file: Path) -> None:
    first = publish(client, model_file, name="first")
    second = publish(client, model_file, name="second")

    created = put_alias(client, "production", first)
    assert created["alias"] == "production"
    assert created["experiment_id"] == first
    assert created["updated_at"]
    moved = put_alias(client, "production", second)

    assert moved["experiment_id"] == second
    assert client.get("/models/production").json()["experiment_id"] == second
    listed = {
        model["experiment_id"]: model["aliases"] for model in client.get("/models").json()["data"]
    }
    assert listed == {first: [], second: ["production"]}


@pytest.mark.parametrize(
    ("alias", "says"),
    [
        ("best", "reserved"),
        ("latest", "reserved"),
        ("abcdef0123456789abcdef0123456789", "experiment id"),
        ("Production", "not a valid alias"),
        ("9lives", "not a valid alias"),
        ("a" * 65, "not a valid alias"),
    ],
)
def test_put_alias_refuses_names_that_mean_something_else(
    client: TestClient, model_file: Path, alias: str, says: str
) -> None:
    experiment_id = publish(client, model_file)

    response = client.put(f"/models/{alias}", json={"experiment_id": experiment_id})

    assert response.status_code == 422
    assert says in response.json()["detail"]
    assert client.get("/models").json()["data"][0]["aliases"] == []


def test_put_alias_needs_a_succeeded_experiment(client: TestClient, model_file: Path) -> None:
    queued = submit(client)["id"]
    failed = fail(client)

    unknown = client.put("/models/production", json={"experiment_id": UNKNOWN_ID})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "experiment_not_found"
    for experiment_id, status in ((queued, "queued"), (failed, "failed")):
        response = client.put("/models/production", json={"experiment_id": experiment_id})
        assert response.status_code == 409
        assert response.json()["error"] == "model_not_ready"
        assert status in response.json()["detail"]
    for body in ({"experiment_id": "not-an-id"}, {}, {"experiment_id": UNKNOWN_ID, "x": 1}):
        assert client.put("/models/production", json=body).status_code == 422
    assert client.get("/models/production").status_code == 404


def test_delete_alias(client: TestClient, model_file: Path) -> None:
    experiment_id = publish(client, model_file)
    put_alias(client, "production", experiment_id)

    assert client.delete("/models/production").status_code == 204

    assert client.get("/models/production").status_code == 404
    assert client.get(f"/models/{experiment_id}").json()["aliases"] == []
    again = client.delete("/models/production")
    assert again.status_code == 404
    assert again.json()["error"] == "model_not_found"


def test_unknown_models_are_404_with_a_way_forward(client: TestClient) -> None:
    for reference in ("best", "latest"):
        response = client.get(f"/models/{reference}")
        assert response.status_code == 404
        assert "POST /experiments" in response.json()["detail"]
    for reference in ("production", UNKNOWN_ID):
        response = client.get(f"/models/{reference}")
        assert response.status_code == 404
        assert response.json()["error"] == "model_not_found"
        assert "GET /models" in response.json()["detail"]
    assert client.get("/models/Not_A_Name!").status_code == 422


def test_an_experiment_that_has_not_succeeded_is_409(client: TestClient) -> None:
    for experiment_id in (submit(client)["id"], fail(client)):
        response = client.get(f"/models/{experiment_id}")
        assert response.status_code == 409
        assert response.json()["error"] == "model_not_ready"
        assert "wait until it has succeeded" in response.json()["detail"]


def test_deleting_an_experiment_drops_it_and_its_aliases(
    client: TestClient, model_file: Path
) -> None:
    kept = publish(client, model_file, name="kept", test_accuracy=0.8)
    deleted = publish(client, model_file, name="deleted", test_accuracy=0.9)
    put_alias(client, "production", deleted)

    assert client.delete(f"/experiments/{deleted}").status_code == 204

    assert [model["experiment_id"] for model in client.get("/models").json()["data"]] == [kept]
    assert client.get("/models/production").status_code == 404
    assert client.get("/models/best").json()["experiment_id"] == kept


def test_writes_need_the_token_reads_do_not(
    make_settings: Callable[..., Settings], model_file: Path
) -> None:
    token = {"Authorization": "Bearer s3cret"}
    with TestClient(create_app(make_settings(api_token="s3cret"))) as client:
        body = {"experiment_id": publish(client, model_file, headers=token)}

        assert client.put("/models/production", json=body).status_code == 401
        assert client.put("/models/production", json=body, headers=token).status_code == 200
        assert client.delete("/models/production").status_code == 401
        assert client.get("/models").json()["data"][0]["aliases"] == ["production"]
        assert client.get("/models/production").status_code == 200


def test_best_breaks_ties_toward_the_earlier_run(client: TestClient, model_file: Path) -> None:
    """Seeded reruns tie exactly: `best` must not move to each new one (and reload it)."""
    first = publish(client, model_file, name="first", test_accuracy=0.95)
    publish(client, model_file, name="tied-rerun", test_accuracy=0.95)
    publish(client, model_file, name="worse", test_accuracy=0.90)
    assert client.get("/models/best").json()["experiment_id"] == first
    assert [model["name"] for model in client.get("/models").json()["data"]][:2] == [
        "first",
        "tied-rerun",
    ]
