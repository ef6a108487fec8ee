"""Serving under faults: concurrent alias writes, a model store that moved or fails, downloads
from a remote store, and deletes and cache churn while models load."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.storage import model_key
from tests.helpers import STROKE, UNKNOWN_ID, publish, runtime_of, save_untrained_model

IMAGE = STROKE  # any digit will do: these tests are about the model store


def test_simultaneous_puts_of_a_new_alias_all_succeed(client: TestClient, tmp_path: Path) -> None:
    model = save_untrained_model(tmp_path / "model.keras")
    first, second = publish(client, model, name="a"), publish(client, model, name="b")
    for round_number in range(5):
        alias = f"race-{round_number}"
        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(
                pool.map(
                    lambda i, alias=alias: client.put(
                        f"/models/{alias}", json={"experiment_id": (first, second)[i % 2]}
                    ),
                    range(8),
                )
            )
        assert [response.status_code for response in responses] == [200] * 8
        assert client.get(f"/models/{alias}").json()["experiment_id"] in (first, second)


def test_a_model_store_moved_elsewhere_keeps_serving(
    settings: Settings, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with TestClient(create_app(settings)) as client:
        experiment_id = publish(client, save_untrained_model(tmp_path / "model.keras"))
    moved = tmp_path / "moved-store"
    shutil.move(settings.models_dir, moved)
    with TestClient(create_app(make_settings(models_dir=str(moved)))) as client:
        response = client.post("/predict", json={"image": IMAGE, "model": experiment_id})
        assert response.status_code == 200, response.text


def test_a_missing_or_corrupt_model_file_is_409_saying_so(
    client: TestClient, tmp_path: Path
) -> None:
    experiment_id = publish(client, save_untrained_model(tmp_path / "model.keras"))
    path = Path(runtime_of(client).store.root) / model_key(experiment_id)
    path.write_bytes(b"not a keras file")
    response = client.post("/predict", json={"image": IMAGE, "model": experiment_id})
    assert response.status_code == 409
    assert "could not be loaded" in response.json()["detail"]
    path.unlink()
    response = client.post("/predict", json={"image": IMAGE, "model": experiment_id})
    assert response.status_code == 409
    assert "missing from the model store" in response.json()["detail"]


def test_a_remote_store_leaves_no_download_behind(
    settings: Settings, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    remote = make_settings(models_url=f"memory://lab-{uuid.uuid4().hex}")
    with TestClient(create_app(remote)) as client:
        experiment_id = publish(client, save_untrained_model(tmp_path / "model.keras"))
        response = client.post("/predict", json={"image": IMAGE, "model": experiment_id})
        assert response.status_code == 200, response.text
    serving = Path(remote.work_dir) / "serving"
    assert not serving.exists() or list(serving.rglob("*")) == []


def test_cycling_over_more_models_than_the_cache_holds_answers_each_correctly(
    settings: Settings, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with TestClient(create_app(make_settings(model_cache_size=2))) as client:
        ids = [
            publish(client, save_untrained_model(tmp_path / f"m{seed}.keras", seed=seed))
            for seed in range(3)
        ]
        first = {
            experiment_id: client.post(
                "/predict", json={"image": IMAGE, "model": experiment_id}
            ).json()["probabilities"]
            for experiment_id in ids
        }
        for _ in range(2):  # every request evicts the model the next one needs
            for experiment_id in ids:
                body = client.post("/predict", json={"image": IMAGE, "model": experiment_id}).json()
                assert body["model"]["experiment_id"] == experiment_id
                assert body["probabilities"] == first[experiment_id]
        assert len(runtime_of(client).predictions.loader.cache) == 2


def test_a_model_deleted_while_it_loads_is_not_kept(client: TestClient, tmp_path: Path) -> None:
    experiment_id = publish(client, save_untrained_model(tmp_path / "model.keras"))
    predictions = runtime_of(client).predictions
    model = predictions.resolver.resolve(experiment_id)
    real_load = predictions.loader._load

    def load_then_delete(servable: object) -> object:
        loaded = real_load(model)
        assert client.delete(f"/experiments/{experiment_id}").status_code == 204
        return loaded

    predictions.loader._load = load_then_delete  # type: ignore[method-assign]
    predictions.loader.predictor(model)  # answers the request that was in flight
    assert experiment_id not in predictions.loader.cache
    response = client.post("/predict", json={"image": IMAGE, "model": experiment_id})
    assert response.status_code == 404
    assert client.get(f"/models/{UNKNOWN_ID}").status_code == 404
