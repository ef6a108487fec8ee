"""Studies with real workers: the optimizers preset end to end, pruning, a killed worker."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.studies.presets import OPTIMIZERS
from tests.factories import tiny_spec
from tests.helpers import ServiceProcess, wait_finished, wait_for

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def wait_study(client: TestClient, study_id: str, *, timeout: float) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/studies/{study_id}").json()
        return body if body["status"] != "running" else None

    found: dict[str, Any] = wait_for(ended, timeout=timeout, interval=0.5, what="the study")
    return found


def history(client: TestClient, experiment_id: str) -> list[tuple[Any, ...]]:
    epochs = client.get(f"/experiments/{experiment_id}/history").json()["epochs"]
    return [tuple(epoch[m] for m in METRICS) for epoch in epochs]


def test_optimizers_preset_ranks_and_matches_lone_experiments(
    client: TestClient, worker: ServiceProcess
) -> None:
    study_id = client.post(
        "/studies", json={"preset": "optimizers", "epochs": 1, "train_size": 1000}
    ).json()["id"]
    study = wait_study(client, study_id, timeout=600)
    assert study["status"] == "finished", worker.log()[-3000:]
    assert study["progress"]["succeeded"] == 8
    # Trial after trial on one warm process, Keras's functions are traced once, not per trial.
    retraced = [line for line in worker.log().splitlines() if "retracing" in line]
    assert not retraced, retraced
    board = study["leaderboard"]
    objectives = [row["objective"] for row in board]
    assert objectives == sorted(objectives, reverse=True)
    assert {row["label"] for row in board} == {variant.label for variant in OPTIMIZERS}
    for row in board:
        assert row["best_epoch"] == 1
        assert row["test_accuracy"] is not None
        assert row["seconds_per_epoch"] > 0
    curves = client.get(f"/studies/{study_id}/curves.svg")
    assert curves.status_code == 200
    # Each trial's legend entry: its label, and its final value on the line below.
    assert ">Nadam</text>" in curves.text
    assert ">final 0." in curves.text
    # Each trial is exactly the experiment its spec gives alone, with the same seed.
    lone = {}
    for row in board:
        spec = client.get(f"/experiments/{row['experiment_id']}").json()["spec"]
        lone[row["experiment_id"]] = client.post(
            "/experiments", json={**spec, "name": f"lone {row['label']}"}
        ).json()["id"]
    for trial_id, lone_id in lone.items():
        assert wait_finished(client, lone_id, timeout=300)["status"] == "succeeded"
        assert history(client, trial_id) == history(client, lone_id)


def test_pruning_stops_bad_trials_early_and_never_the_best(
    client: TestClient, worker: ServiceProcess
) -> None:
    base = tiny_spec(epochs=3, train_size=1000, validation_size=500)
    del base["name"]
    good, bad = 0.01, 1e-6
    created = client.post(
        "/studies",
        json={
            "base": base,
            "sampler": "random",
            "n_trials": 4,
            "seed": 4,  # draws good, bad, good, bad
            "space": {"compile.optimizer.learning_rate": [good, bad]},
            "pruner": {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 1},
        },
    )
    assert created.status_code == 202, created.text
    study = wait_study(client, created.json()["id"], timeout=400)
    board = study["leaderboard"]
    assert board[0]["status"] == "succeeded"  # the best is never pruned
    assert board[0]["varied"] == {"compile.optimizer.learning_rate": good}
    pruned = [row for row in board if row["status"] == "pruned"]
    assert pruned, board
    for row in pruned:
        assert row["varied"] == {"compile.optimizer.learning_rate": bad}
        assert row["epochs_done"] < 3
        assert row["error"].startswith(f"pruned at epoch {row['epochs_done']}")
    for row in board:
        if row["varied"]["compile.optimizer.learning_rate"] == good:
            assert row["status"] == "succeeded"


def test_a_killed_worker_and_a_restarted_api_lose_no_trial(
    settings: Settings, start_service: Any
) -> None:
    base = tiny_spec(epochs=2, train_size=1000, validation_size=500)
    del base["name"]
    first_worker = start_service(settings, "worker")
    with TestClient(create_app(settings)) as client:
        study_id = client.post(
            "/studies", json={"base": base, "space": {"fit.seed": [1, 2, 3]}}
        ).json()["id"]

        def first_trial_training() -> bool:
            row = client.get(f"/studies/{study_id}").json()["leaderboard"][0]
            return row["status"] == "running" and row["epochs_done"] >= 1

        wait_for(first_trial_training, timeout=180, interval=0.1, what="the first trial's epoch")
    first_worker.kill()
    time.sleep(1)
    second_worker = start_service(settings, "worker")
    with TestClient(create_app(settings)) as client:  # a new API process sees the same study
        study = wait_study(client, study_id, timeout=300)
        assert study["status"] == "finished", second_worker.log()[-3000:]
        trials = client.get("/experiments", params={"order": "created"}).json()["data"]
        assert len(trials) == 3
        assert sorted(t["trial_params"]["fit.seed"] for t in trials) == [1, 2, 3]
        assert all(t["status"] == "succeeded" for t in trials)
        first = client.get(f"/experiments/{trials[0]['id']}").json()
        assert len(first["attempts"]) == 2
