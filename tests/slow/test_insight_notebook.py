"""The notebook's LeakyReLU + he_normal net on full MNIST: healthy layers, no gradient warning."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import leaky_relu_spec
from tests.helpers import ServiceProcess, wait_finished

pytestmark = pytest.mark.slow

GRADIENT_KINDS = {"vanishing_gradients", "exploding_gradients", "dying_relu", "saturation"}


def test_leaky_relu_net_on_full_mnist_is_clean_of_gradient_warnings(
    client: TestClient, worker: ServiceProcess
) -> None:
    experiment_id = client.post("/experiments", json=leaky_relu_spec(fit={"epochs": 3})).json()[
        "id"
    ]
    result = wait_finished(client, experiment_id, timeout=1200)
    assert result["status"] == "succeeded", worker.log()[-2000:]

    assert not {finding["kind"] for finding in result["diagnostics"]} & GRADIENT_KINDS
    layers = client.get(f"/experiments/{experiment_id}/layers").json()["epochs"]
    assert [epoch["epoch"] for epoch in layers] == [1, 2, 3]
    evaluation = client.get(f"/experiments/{experiment_id}/evaluation").json()
    assert sum(map(sum, evaluation["confusion"])) == 10_000
    assert evaluation["test_accuracy"] == result["test_accuracy"]
