"""The notebook's three nets on full MNIST through the API, seed 42: the seed's results hold.

Raw Keras here gives 0.9144 (LeakyReLU, 10 epochs), 0.9451 (BatchNorm, 10) and 0.8946
(Dropout, 5); the service trains the same maths, so it must reach at least the floors below.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import batchnorm_spec, dropout_spec, leaky_relu_spec
from tests.helpers import ServiceProcess, wait_finished

pytestmark = pytest.mark.slow

FLOORS = {"leaky-relu": (10, 0.90), "batchnorm": (10, 0.935), "dropout": (5, 0.87)}


def test_notebook_nets_reach_their_test_accuracy(
    client: TestClient, worker: ServiceProcess
) -> None:
    specs = [
        leaky_relu_spec(fit={"epochs": FLOORS["leaky-relu"][0]}),
        batchnorm_spec(fit={"epochs": FLOORS["batchnorm"][0]}),
        dropout_spec(fit={"epochs": FLOORS["dropout"][0]}),
    ]
    ids = {}
    for spec in specs:
        response = client.post("/experiments", json=spec)
        assert response.status_code == 202, response.text
        ids[spec["name"]] = response.json()["id"]
    for name, experiment_id in ids.items():
        epochs, floor = FLOORS[name]
        result = wait_finished(client, experiment_id, timeout=1200)
        assert result["status"] == "succeeded", (result["error"], worker.log()[-2000:])
        history = client.get(f"/experiments/{experiment_id}/history").json()["epochs"]
        assert [epoch["epoch"] for epoch in history] == list(range(1, epochs + 1))
        print(f"{name}: test accuracy {result['test_accuracy']:.4f} (floor {floor})")
        assert result["test_accuracy"] >= floor, name
