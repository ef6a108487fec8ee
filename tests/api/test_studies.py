"""Studies and comparisons over HTTP without a worker: creation, validation, cancel, delete."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from service.api.app import create_app
from service.config import Settings
from service.db import claims, leases
from service.db import studies as store
from service.db.models import ExperimentRow
from service.db.session import Database
from service.domain import EpochRecord
from tests.factories import batchnorm_spec, dropout_spec, leaky_relu_spec, tiny_spec
from tests.helpers import runtime_of


def base() -> dict[str, Any]:
    spec = tiny_spec()
    del spec["name"]
    return spec


def test_optimizers_preset_queues_max_parallel_trials_of_eight(client: TestClient) -> None:
    created = client.post(
        "/studies",
        json={"preset": "optimizers", "epochs": 3, "train_size": 10000, "max_parallel": 2},
    )
    assert created.status_code == 202, created.text
    study = created.json()
    assert study["n_trials"] == 8
    assert study["status"] == "running"
    assert study["progress"]["queued"] == 2
    labels = [row["label"] for row in study["leaderboard"]]
    assert labels == ["SGD", "SGD momentum 0.9"]
    nesterov = study["definition"]["space"]["compile.optimizer"][2]
    assert nesterov == {"type": "SGD", "learning_rate": 0.001, "momentum": 0.9, "nesterov": True}
    trial = client.get(f"/experiments/{study['leaderboard'][1]['experiment_id']}").json()
    assert trial["study_id"] == study["id"]
    assert trial["spec"]["fit"]["epochs"] == 3
    assert trial["spec"]["fit"]["train_size"] == 10000
    assert trial["spec"]["compile"]["optimizer"]["momentum"] == 0.9
    assert trial["summary"]["total_params"] == 266_610
    listed = client.get("/studies").json()
    assert listed["count"] == 1
    assert listed["data"][0]["progress"]["queued"] == 2


def test_every_trial_is_validated_before_any_is_queued(client: TestClient) -> None:
    too_big = client.post(
        "/studies",
        json={"base": base(), "space": {"layers[1].units": [10, 20]}, "sampler": "grid"},
    )
    # layers[1] of the tiny net is its softmax: 20 units is not 10 probabilities.
    assert too_big.status_code == 422
    body = too_big.json()
    assert body["detail"].startswith("trial 1 (units=20): layers: ")
    assert body["details"][0]["loc"][:3] == ["body", "trials", 1]

    over_limit = client.post(
        "/studies",
        json={"base": base(), "space": {"fit.epochs": [1, 1000]}},
    )
    assert over_limit.status_code == 422
    assert "trial 1 (epochs=1000)" in over_limit.json()["detail"]
    assert "(MAX_EPOCHS)" in over_limit.json()["detail"]

    nowhere = client.post("/studies", json={"base": base(), "space": {"layers[7].units": [1]}})
    assert nowhere.status_code == 422
    assert "the spec has no layers[7]" in nowhere.json()["detail"]

    tpe = client.post(
        "/studies",
        json={
            "base": base(),
            "sampler": "tpe",
            "n_trials": 3,
            "space": {
                "compile.optimizer.learning_rate": {"type": "log_uniform", "low": 1e-3, "high": 50}
            },
        },
    )
    assert tpe.status_code == 422  # its top corner is over the optimizer's learning-rate bound
    assert "learning_rate" in tpe.json()["detail"]

    assert client.get("/studies").json()["count"] == 0
    assert client.get("/experiments").json()["count"] == 0


def test_a_study_over_the_trial_cap_is_refused(
    make_settings: Callable[..., Settings],
) -> None:
    with TestClient(create_app(make_settings(max_study_trials=3))) as client:
        grid = client.post("/studies", json={"base": base(), "space": {"fit.seed": [1, 2, 3, 4]}})
        assert grid.status_code == 422
        assert "4 trials" in grid.json()["detail"]
        assert "(MAX_STUDY_TRIALS)" in grid.json()["detail"]
        drawn = client.post(
            "/studies",
            json={
                "base": base(),
                "sampler": "random",
                "n_trials": 5,
                "space": {"fit.seed": [1, 2]},
            },
        )
        assert drawn.status_code == 422
        assert "(MAX_STUDY_TRIALS)" in drawn.json()["detail"]
        assert client.post("/studies", json={"preset": "optimizers"}).status_code == 422


def test_bad_bodies_say_what_to_change(client: TestClient) -> None:
    both = client.post("/studies", json={"preset": "dropout", "base": base()})
    assert both.status_code == 422
    assert "either" in both.json()["detail"]
    no_trials = client.post(
        "/studies", json={"base": base(), "sampler": "random", "space": {"fit.seed": [1]}}
    )
    assert "n_trials" in no_trials.json()["detail"]
    bad_path = client.post("/studies", json={"base": base(), "space": {"fit..seed": [1]}})
    assert bad_path.status_code == 422
    assert client.get("/studies/nope").status_code == 404
    assert client.get("/studies/nope").json()["error"] == "study_not_found"


def test_cancel_then_delete_a_study_removes_its_trials(client: TestClient) -> None:
    study = client.post(
        "/studies", json={"preset": "batchnorm", "epochs": 1, "train_size": 500, "max_parallel": 2}
    ).json()
    assert [row["label"] for row in study["leaderboard"]] == ["plain", "BatchNormalization"]
    assert client.delete(f"/studies/{study['id']}").status_code == 409
    cancelled = client.post(f"/studies/{study['id']}/cancel")
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["progress"]["cancelled"] == 2
    assert client.post(f"/studies/{study['id']}/cancel").status_code == 409
    trial_ids = [row["experiment_id"] for row in study["leaderboard"]]
    assert client.delete(f"/studies/{study['id']}").status_code == 204
    assert client.get(f"/studies/{study['id']}").status_code == 404
    for trial_id in trial_ids:
        assert client.get(f"/experiments/{trial_id}").status_code == 404


def _with_epochs(
    client: TestClient, settings: Settings, spec: dict[str, Any], accuracies: list[float]
) -> str:
    """An experiment with these validation accuracies recorded, as a worker would have."""
    experiment_id: str = client.post("/experiments", json=spec).json()["id"]
    db = Database(settings.database_url)
    with db.scope() as session:
        assert claims.claim(session, experiment_id=experiment_id, worker="t", lease_seconds=60)
    for epoch, accuracy in enumerate(accuracies, start=1):
        record = EpochRecord(epoch, 1 - accuracy, accuracy + 0.02, 1 - accuracy, accuracy, 2.0, 1)
        with db.scope() as session:
            leases.record_epoch(
                session, experiment_id=experiment_id, attempt=1, record=record, lease_seconds=60
            )
    db.dispose()
    return experiment_id


def test_compare_shows_only_what_differs_and_aligns_histories(
    client: TestClient, settings: Settings
) -> None:
    sgd = tiny_spec(epochs=3)
    sgd["compile"]["optimizer"] = {"type": "SGD", "learning_rate": 0.001}
    adam = tiny_spec(epochs=2)
    first = _with_epochs(client, settings, sgd, [0.5, 0.8, 0.91])
    second = _with_epochs(client, settings, adam, [0.92, 0.95])
    compared = client.get("/compare", params={"ids": f"{first},{second}"})
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert body["differences"]["compile.optimizer.type"] == ["SGD", "Adam"]
    assert body["differences"]["fit.epochs"] == [3, 2]
    assert "fit.batch_size" not in body["differences"]
    assert "layers[1].units" not in body["differences"]
    first_run, second_run = body["runs"]
    assert first_run["epochs_to_threshold"] == 3
    assert second_run["epochs_to_threshold"] == 1
    assert first_run["best_val_accuracy"] == 0.91
    assert first_run["best_epoch"] == 3
    assert first_run["seconds_per_epoch"] == 2.0
    assert abs(first_run["final_gap"] - 0.02) < 1e-9
    assert body["epochs"] == [1, 2, 3]
    assert body["histories"][1]["val_accuracy"] == [0.92, 0.95, None]
    repeated = client.get("/compare", params={"ids": [first, second], "threshold": 0.95}).json()
    assert [run["epochs_to_threshold"] for run in repeated["runs"]] == [None, 2]
    assert client.get("/compare", params={"ids": first}).status_code == 422
    assert client.get("/compare", params={"ids": f"{first},nope"}).status_code == 404
    assert body["layers"][1]["changes"] == []  # the same layers
    chart = client.get("/compare.svg", params={"ids": [first, second]})
    assert "final 0.9100" in chart.text


def test_compare_aligns_layer_lists_as_a_diff_and_says_it_as_a_learner_would(
    client: TestClient,
) -> None:
    ids = [
        client.post("/experiments", json=spec).json()["id"]
        for spec in (leaky_relu_spec(), batchnorm_spec(), dropout_spec())
    ]

    body = client.get("/compare", params={"ids": ids}).json()

    assert not [path for path in body["differences"] if path.startswith("layers")]
    leaky, batchnorm, dropout = body["layers"]
    assert leaky == {
        "net": "Flatten, Dense 300 LeakyReLU, Dense 100 LeakyReLU, Dense 10 softmax",
        "changes": [],
    }
    assert batchnorm["changes"] == [
        "+ BatchNormalization after Flatten, after each hidden Dense",
        "hidden Dense: activation LeakyReLU -> relu",
        "hidden Dense: kernel_initializer he_normal -> glorot_uniform",
    ]
    assert dropout["changes"] == [
        "+ Dropout 0.2 after Flatten, after each hidden Dense",
        "hidden Dense: activation LeakyReLU -> elu",
    ]
    back = client.get("/compare", params={"ids": [ids[1], ids[0]]}).json()["layers"][1]
    assert back["changes"][0] == "- BatchNormalization after Flatten, after each hidden Dense"


def test_the_list_counts_each_study_s_trials_as_its_own_page_does(client: TestClient) -> None:
    """The list counts every study's trials in one query; each count is its page's."""
    preset = {"preset": "batchnorm", "epochs": 1, "train_size": 500}
    kept = client.post("/studies", json={**preset, "max_parallel": 1}).json()
    stopped = client.post("/studies", json={**preset, "max_parallel": 2}).json()
    assert client.post(f"/studies/{stopped['id']}/cancel").status_code == 202
    listed = {study["id"]: study["progress"] for study in client.get("/studies").json()["data"]}
    for study in (kept, stopped):
        assert listed[study["id"]] == client.get(f"/studies/{study['id']}").json()["progress"]
    assert listed[kept["id"]]["queued"] == 1
    assert listed[stopped["id"]]["cancelled"] == 2
    assert sum(listed[stopped["id"]].values()) == 2


def test_the_leaderboard_reads_each_trial_s_head_as_the_whole_trial_has_it(
    client: TestClient,
) -> None:
    """GET /studies/{id} reads its trials with store.trial_heads (no spec, summary or epoch
    count, which it never shows): each head holds what the whole trial holds."""
    body = {"preset": "optimizers", "epochs": 3, "train_size": 10000, "max_parallel": 2}
    study = client.post("/studies", json=body).json()
    first, second = (row["experiment_id"] for row in study["leaderboard"])
    with runtime_of(client).db.scope() as session:
        session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.id == first)
            .values(status="failed", error="diverged", test_accuracy=0.5)
        )
        heads = store.trial_heads(session, study["id"])
        whole = store.trials(session, study["id"])
    assert [astuple(head) for head in heads] == [
        (t.id, t.name, t.status, t.trial_params, t.test_accuracy, t.error) for t in whole
    ]
    assert [head.id for head in heads] == [first, second]
    board = client.get(f"/studies/{study['id']}").json()
    assert board["progress"]["failed"] == 1
    assert {row["experiment_id"]: row["error"] for row in board["leaderboard"]}[first] == "diverged"
