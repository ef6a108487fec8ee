"""The chapter's tools through the API and a real worker: every new spec field trains, and the
learning rate each epoch used is in the history."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import FLATTEN, IMAGE, SOFTMAX_10, tiny_spec
from tests.helpers import ServiceProcess, wait_finished

FIT = {"epochs": 2, "batch_size": 50, "train_size": 500, "seed": 1}

# Every layer and argument the chapter adds, on a schedule with clipping, validated Keras's way.
EVERY_NEW_FIELD: dict[str, Any] = {
    **tiny_spec(),
    "layers": [
        {"type": "Input", "shape": [28, 28]},
        IMAGE,
        {
            "type": "Conv2D",
            "filters": 2,
            "kernel_size": 3,
            "kernel_regularizer": {"type": "l1_l2", "l1": 1e-5, "l2": 1e-4},
            "kernel_constraint": {"type": "max_norm", "max_value": 2.0, "axis": [0, 1, 2]},
        },
        {"type": "PReLU", "shared_axes": [1, 2]},
        FLATTEN,
        {
            "type": "Dense",
            "units": 16,
            "activation": "selu",
            "kernel_initializer": "lecun_normal",
            "kernel_regularizer": "l2",
            "kernel_constraint": {"type": "max_norm"},
        },
        {"type": "AlphaDropout", "rate": 0.1},
        {"type": "Dense", "units": 16},
        {"type": "ELU", "alpha": 0.5},
        {"type": "ReLU", "max_value": 6.0},
        {"type": "PReLU"},
        SOFTMAX_10,
    ],
    "compile": {
        "optimizer": {
            "type": "SGD",
            "learning_rate": {
                "type": "ExponentialDecay",
                "initial_learning_rate": 0.01,
                "decay_steps": 9,
                "decay_rate": 0.5,
            },
            "clipnorm": 1.0,
        }
    },
    "fit": {**FIT, "validation_split": 0.1},
}

# The notebook's Keras 2 habits, with the rate lowered by ReduceLROnPlateau: a min_delta no
# loss can beat makes every epoch after the first a plateau.
PLATEAU: dict[str, Any] = {
    **tiny_spec(),
    "layers": [{"type": "Flatten", "input_shape": [28, 28]}, SOFTMAX_10],
    "compile": {"optimizer": {"type": "SGD", "learning_rate": 0.01, "global_clipnorm": 5.0}},
    "fit": {
        **FIT,
        "epochs": 3,
        "validation_size": 100,
        "reduce_lr_on_plateau": {
            "monitor": "val_loss",
            "factor": 0.5,
            "patience": 0,
            "min_delta": 100.0,
        },
    },
}


@pytest.mark.parametrize(
    ("spec", "rates"),
    [
        # 450 images in batches of 50 are 9 steps an epoch, one decay_steps: halved per epoch.
        pytest.param(EVERY_NEW_FIELD, [0.005, 0.0025], id="every-new-field"),
        pytest.param(PLATEAU, [0.01, 0.01, 0.005], id="plateau"),
    ],
)
def test_chapter_spec_trains_and_records_its_learning_rate(
    client: TestClient, worker: ServiceProcess, spec: dict[str, Any], rates: list[float]
) -> None:
    created = client.post("/experiments", json=spec)
    assert created.status_code == 202, created.text

    finished = wait_finished(client, created.json()["id"])

    assert finished["status"] == "succeeded", (finished["error"], worker.log()[-3000:])
    epochs = client.get(f"/experiments/{finished['id']}/history").json()["epochs"]
    assert [epoch["learning_rate"] for epoch in epochs] == pytest.approx(rates)
    assert all(epoch["val_loss"] is not None for epoch in epochs)
