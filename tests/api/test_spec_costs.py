"""Nets refused before they cost anything: few parameters but activations that would not fit
in memory, or tensor sizes beyond what TensorFlow indexes; and the summary's estimate."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.spec.cost import WORKSPACE_BYTES
from tests.factories import tiny_spec

SOFTMAX = {"type": "Dense", "units": 10, "activation": "softmax"}
FLATTEN = {"type": "Flatten"}


def _spec(layers: list[dict[str, Any]], batch_size: int = 32) -> dict[str, Any]:
    return {**tiny_spec(batch_size=batch_size), "layers": layers}


# The reproductions: few parameters, enormous activations.
WIDE_DENSE = _spec(
    [
        {"type": "Reshape", "target_shape": [784, 1]},
        {"type": "Dense", "units": 4096},  # 8,192 parameters, 3.2 M values per image
        {"type": "Dense", "units": 1},
        FLATTEN,
        SOFTMAX,
    ],
    batch_size=8192,
)
WIDE_CONV = _spec(
    [
        {"type": "Reshape", "target_shape": [28, 28, 1]},
        {"type": "Conv2D", "filters": 2048, "kernel_size": 3, "padding": "same"},
        {"type": "Conv2D", "filters": 1, "kernel_size": 1},
        FLATTEN,
        SOFTMAX,
    ],
    batch_size=8192,
)
HUGE_CONV = _spec(
    [
        {"type": "Reshape", "target_shape": [784, 1, 1]},
        {"type": "Conv2D", "filters": 2048, "kernel_size": 1},
        {"type": "Reshape", "target_shape": [1605632, 1, 1]},
        {"type": "Conv2D", "filters": 2048, "kernel_size": 1},  # 3.3 G values, 13 GB, per image
        {"type": "Conv2D", "filters": 1, "kernel_size": 1},
        FLATTEN,
        SOFTMAX,
    ],
    batch_size=1,
)
OVERFLOWING_RESHAPE = _spec(
    [
        {"type": "Reshape", "target_shape": [784, 1]},
        {"type": "Dense", "units": 16384},
        {"type": "Reshape", "target_shape": [784, 16384, 1]},
        {"type": "Dense", "units": 16384},
        {"type": "Reshape", "target_shape": [210453397504, 16384, 1]},
        {"type": "Dense", "units": 16384},  # 5.6e19 values: beyond int64
        {"type": "Dense", "units": 1},
        FLATTEN,
        SOFTMAX,
    ]
)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        pytest.param(WIDE_DENSE, "MAX_ACTIVATION_BYTES", id="dense-8192-batch"),
        pytest.param(WIDE_CONV, "MAX_ACTIVATION_BYTES", id="conv-8192-batch"),
        pytest.param(HUGE_CONV, "values per image", id="conv-13GB-per-image"),
        pytest.param(OVERFLOWING_RESHAPE, "values per image", id="reshape-beyond-int64"),
    ],
)
def test_nets_too_large_to_train_are_refused(
    client: TestClient, spec: dict[str, Any], says: str
) -> None:
    response = client.post("/experiments", json=spec)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] in ("invalid_spec", "invalid_request")
    assert says in body["detail"]
    assert client.get("/experiments").json()["count"] == 0


def test_the_activation_cap_names_its_numbers(client: TestClient) -> None:
    detail = client.post("/experiments", json=WIDE_DENSE).json()["detail"]
    assert "at its peak" in detail
    assert "per image" in detail
    assert "for a batch of 8192" in detail
    assert "over the limit of 4,295.0 MB (MAX_ACTIVATION_BYTES)" in detail


def test_the_summary_estimates_memory_and_time(client: TestClient) -> None:
    summary = client.post("/experiments", json=tiny_spec()).json()["summary"]
    estimate = summary["estimate"]
    # tiny_spec: the input (2 floats a value), a Flatten (a view: nothing), a Dense 10 (2.5).
    assert estimate["activation_bytes_per_image"] == 8 * 784 + 10 * 10
    assert estimate["activation_bytes_per_batch"] == 64 * estimate["activation_bytes_per_image"]
    # Its 2,000 images copied twice (the peak while fit converts them), and the workspace.
    assert estimate["memory_bytes"] == WORKSPACE_BYTES + 2 * 4 * 784 * 2000
    assert estimate["flops_per_image"] == 784 + 2 * 784 * 10  # the Flatten, then the Dense
    assert estimate["seconds_per_epoch"] >= 0
    assert "rough" in estimate["note"]
