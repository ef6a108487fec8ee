"""The experiments API without a worker: submission, dry-run summary, reads, cancel, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from tests.factories import NOTEBOOK_NETS, conv_spec, leaky_relu_spec, tiny_spec
from tests.helpers import submit


@pytest.mark.parametrize("net", sorted(NOTEBOOK_NETS))
def test_create_experiment_shows_keras_summary(client: TestClient, net: str) -> None:
    factory, counts = NOTEBOOK_NETS[net]
    body = submit(client, factory())
    assert body["status"] == "queued"
    summary = body["summary"]
    assert (
        summary["total_params"],
        summary["trainable_params"],
        summary["non_trainable_params"],
    ) == tuple(counts)
    assert summary["layers"][0] == {
        "name": "flatten",
        "type": "Flatten",
        "output_shape": [None, 784],
        "params": 0,
    }
    assert summary["layers"][-1]["output_shape"] == [None, 10]


def test_create_experiment_echoes_spec_with_defaults(client: TestClient) -> None:
    spec = leaky_relu_spec()
    spec["layers"][2] = {"type": "LeakyReLU", "alpha": 0.2}
    spec["compile"] = {"optimizer": "nadam"}
    del spec["fit"]
    body = submit(client, spec)
    assert body["spec"]["layers"][1] == {
        "type": "Dense",
        "units": 300,
        "activation": None,
        "kernel_initializer": "he_normal",
        "use_bias": True,
        "kernel_regularizer": None,
        "kernel_constraint": None,
    }
    assert body["spec"]["layers"][2] == {"type": "LeakyReLU", "negative_slope": 0.2}
    assert body["spec"]["compile"]["optimizer"] == {
        "type": "Nadam",
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-07,
        "clipnorm": None,
        "clipvalue": None,
        "global_clipnorm": None,
    }
    assert body["spec"]["fit"] == {
        "epochs": 10,
        "batch_size": 32,
        "validation_size": 5000,
        "validation_split": None,
        "train_size": None,
        "seed": 42,
        "early_stopping": None,
        "reduce_lr_on_plateau": None,
        "layer_health": True,
    }


def test_read_experiment_and_history_before_training(client: TestClient) -> None:
    created = submit(client, conv_spec())
    read = client.get(f"/experiments/{created['id']}").json()
    assert read["id"] == created["id"]
    assert read["status"] == "queued"
    assert read["attempts"] == []
    assert read["summary"]["total_params"] == 54_410
    history = client.get(f"/experiments/{created['id']}/history").json()
    assert history == {"experiment_id": created["id"], "status": "queued", "epochs": []}


@pytest.mark.parametrize("path", ["/experiments/nope", "/experiments/nope/history"])
def test_read_unknown_experiment_is_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "experiment_not_found"
    assert "GET /experiments" in response.json()["detail"]


def test_list_experiments_paginates_filters_and_orders(client: TestClient) -> None:
    ids = [submit(client, tiny_spec(seed=seed))["id"] for seed in range(5)]
    client.post(f"/experiments/{ids[0]}/cancel")
    page = client.get("/experiments", params={"limit": 2, "offset": 0}).json()
    assert page["count"] == 5
    assert [item["id"] for item in page["data"]] == ids[::-1][:2]
    oldest_first = client.get("/experiments", params={"order": "created"}).json()
    assert [item["id"] for item in oldest_first["data"]] == ids
    queued = client.get("/experiments", params={"status": "queued"}).json()
    assert queued["count"] == 4
    assert ids[0] not in [item["id"] for item in queued["data"]]
    cancelled = client.get("/experiments", params={"status": "cancelled"}).json()
    assert [item["id"] for item in cancelled["data"]] == [ids[0]]
    assert client.get("/experiments", params={"order": "-test_accuracy"}).status_code == 200
    assert client.get("/experiments", params={"status": "bogus"}).status_code == 422
    assert client.get("/experiments", params={"limit": 0}).status_code == 422


def test_cancel_queued_experiment_never_starts(client: TestClient) -> None:
    created = submit(client, tiny_spec())
    response = client.post(f"/experiments/{created['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    again = client.post(f"/experiments/{created['id']}/cancel")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]


def test_delete_needs_a_finished_experiment(client: TestClient) -> None:
    created = submit(client, tiny_spec())
    refused = client.delete(f"/experiments/{created['id']}")
    assert refused.status_code == 409
    assert "cancel it first" in refused.json()["detail"]
    client.post(f"/experiments/{created['id']}/cancel")
    assert client.delete(f"/experiments/{created['id']}").status_code == 204
    assert client.get(f"/experiments/{created['id']}").status_code == 404
    assert client.delete(f"/experiments/{created['id']}").status_code == 404


BAD_SPECS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown layer", lambda s: s["layers"].insert(1, {"type": "LSTM", "units": 3}), "layers.1"),
    (
        "unknown argument",
        lambda s: s["layers"][1].update(unitz=3),
        "layers.1.Dense.unitz",
    ),
    ("units out of range", lambda s: s["layers"][1].update(units=0), "layers.1.Dense.units"),
    (
        "rate out of range",
        lambda s: s["layers"].insert(1, {"type": "Dropout", "rate": 1.5}),
        "layers.1.Dropout.rate",
    ),
    ("last layer not 10", lambda s: s["layers"][-1].update(units=9), "layers"),
    ("last layer not softmax", lambda s: s["layers"][-1].update(activation="relu"), "layers"),
    (
        "conv on flat tensor",
        lambda s: s["layers"].insert(2, {"type": "Conv2D", "filters": 4, "kernel_size": 3}),
        "layers",
    ),
    ("unknown optimizer", lambda s: s["compile"].update(optimizer={"type": "Lion"}), "optimizer"),
    ("unknown loss", lambda s: s["compile"].update(loss="mse"), "compile.loss"),
    ("zero epochs", lambda s: s["fit"].update(epochs=0), "fit.epochs"),
    ("missing name", lambda s: s.pop("name"), "name"),
]


@pytest.mark.parametrize(("case", "mutate", "field"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_spec_is_422_naming_the_field(
    client: TestClient, case: str, mutate: Callable[[dict[str, Any]], None], field: str
) -> None:
    spec = leaky_relu_spec()
    mutate(spec)
    response = client.post("/experiments", json=spec)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert field in body["detail"]
    assert client.get("/experiments").json()["count"] == 0  # nothing queued


@pytest.mark.parametrize(
    ("overrides", "spec", "field", "cap"),
    [
        ({"max_params": 100_000}, leaky_relu_spec(), "layers", "MAX_PARAMS"),
        ({"max_epochs": 5}, leaky_relu_spec(), "fit.epochs", "MAX_EPOCHS"),
        ({"max_layers": 3}, leaky_relu_spec(), "layers", "MAX_LAYERS"),
    ],
)
def test_configured_limits_are_422_naming_the_cap(
    make_settings: Callable[..., Settings],
    overrides: dict[str, Any],
    spec: dict[str, Any],
    field: str,
    cap: str,
) -> None:
    from service.api.app import create_app

    with TestClient(create_app(make_settings(**overrides))) as limited:
        response = limited.post("/experiments", json=spec)
        assert response.status_code == 422
        body = response.json()
        assert body["error"] == "invalid_spec"
        assert cap in body["detail"]
        assert any(".".join(map(str, d["loc"])).endswith(field) for d in body["details"])
        assert limited.get("/experiments").json()["count"] == 0


def test_queued_experiments_per_client_are_capped(make_settings: Callable[..., Settings]) -> None:
    from service.api.app import create_app

    app = create_app(make_settings(max_queued_per_client=2))
    with TestClient(app) as capped:
        for _ in range(2):
            submit(capped, tiny_spec())
        refused = capped.post("/experiments", json=tiny_spec())
        assert refused.status_code == 429
        assert "MAX_QUEUED_PER_CLIENT" in refused.json()["detail"]
        # A header anyone can change is no identity: rotating it escapes nothing.
        rotated = capped.post("/experiments", json=tiny_spec(), headers={"X-Client-Id": "bob"})
        assert rotated.status_code == 429
        # Another address is another client.
        submit(TestClient(app, client=("192.0.2.7", 50000)), tiny_spec())


def test_body_over_limit_is_413(make_settings: Callable[..., Settings]) -> None:
    from service.api.app import create_app

    with TestClient(create_app(make_settings(max_body_bytes=2048))) as small:
        spec = tiny_spec()
        spec["description"] = "x" * 1900
        response = small.post("/experiments", json=spec)
        assert response.status_code == 413
        assert "MAX_BODY_BYTES" in response.json()["detail"]


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/experiments", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_health_reports_ok(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["data"] == "ok"


def test_health_reports_missing_data(make_settings: Callable[..., Settings], tmp_path: Any) -> None:
    from service.api.app import create_app

    with TestClient(create_app(make_settings(mnist_path=str(tmp_path / "nope.npz")))) as client:
        response = client.get("/health")
        assert response.status_code == 503
        assert response.json()["data"].startswith("unavailable: MNIST_PATH=")
