"""The inference hot path answers exactly as the routes do, and hands them everything else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.ml.build import build_model
from service.schemas.experiments import ExperimentCreate
from tests.factories import batchnorm_spec
from tests.helpers import publish

IMAGE = np.random.default_rng(3).integers(0, 256, (28, 28)).tolist()
# Parsed by the route, not the hot path, which takes only the exact media type.
ROUTE_ONLY = {"content-type": "application/json; charset=utf-8"}


@pytest.fixture
def served(client: TestClient, tmp_path: Path) -> str:
    path = tmp_path / "model.keras"
    build_model(ExperimentCreate.model_validate(batchnorm_spec())).save(path)
    experiment_id = publish(client, path, name="bn")
    assert client.post("/predict", json={"image": IMAGE, "model": experiment_id}).is_success
    return experiment_id  # warm now: the next requests may take the hot path


@pytest.mark.parametrize(
    "body",
    [
        {"image": IMAGE},
        {"image": np.ravel(IMAGE).tolist(), "scale": "0-255"},
        {"image": (np.array(IMAGE) / 255).tolist(), "scale": "auto"},
        {"image": IMAGE, "scale": "0-1"},  # refused: values over 1
        {"image": IMAGE, "extra": 1},  # refused: unknown field
        {"image": [[1] * 28] * 27},  # refused: 27 rows
    ],
    ids=["rows", "flat", "0-1", "over-scale", "extra-field", "27-rows"],
)
def test_predict_answers_as_the_route(client: TestClient, served: str, body: dict) -> None:
    body = {**body, "model": served}

    hot = client.post("/predict", json=body)
    route = client.post("/predict", content=hot.request.content, headers=ROUTE_ONLY)

    assert (hot.status_code, hot.json()) == (route.status_code, route.json())
    assert hot.headers["content-type"] == route.headers["content-type"]
    assert hot.headers["x-request-id"]


def test_v2_infer_answers_as_the_route(client: TestClient, served: str) -> None:
    body = {
        "inputs": [{"name": "images", "shape": [1, 28, 28], "datatype": "UINT8", "data": IMAGE}]
    }
    for path in (
        f"/v2/models/{served}/infer",
        f"/v2/models/{served}/versions/{served}/infer",
        f"/v2/models/{served}/versions/other/infer",
    ):
        hot = client.post(path, json=body)
        # A version the hot path does not know is the route's: the same answer either way.
        assert hot.status_code == (404 if path.endswith("other/infer") else 200), hot.text
    answer = client.post(f"/v2/models/{served}/infer", json=body).json()
    predicted = client.post("/predict", json={"image": IMAGE, "model": served}).json()
    probabilities = next(o for o in answer["outputs"] if o["name"] == "probabilities")["data"]
    np.testing.assert_allclose(probabilities, predicted["probabilities"], atol=1e-6)


def test_hot_answers_are_counted_under_their_route(client: TestClient, served: str) -> None:
    client.post("/predict", json={"image": IMAGE, "model": served})

    scrape = client.get("/metrics").text

    assert 'http_requests_total{method="POST",route="/predict",status="200"}' in scrape
