"""Reproduction with a real worker on small data: a rerun's history is identical to the
original's, and the take-home script, run on its own, trains the very same history and weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import IMAGE, dropout_spec, tiny_spec
from tests.helpers import MNIST_PATH, ServiceProcess, wait_finished

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
SMALL = {"epochs": 2, "train_size": 1000, "validation_size": 500}

# The classic layer types, a non-default optimizer, early stopping, and a ReduceLROnPlateau that
# halves the rate after epoch 2 (min_delta counts no epoch as better than the first), so that
# epoch 3 trains at the reduced rate: what the script must get right.
EVERY_KIND = tiny_spec(**SMALL | {"epochs": 3}, batch_size=64, seed=3) | {
    "name": "every-kind",
    "layers": [
        IMAGE,
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "kernel_initializer": "he_normal"},
        {"type": "MaxPooling2D"},
        {"type": "BatchNormalization", "momentum": 0.9},
        {"type": "Flatten"},
        {"type": "Dropout", "rate": 0.25},
        {"type": "Dense", "units": 32},
        {"type": "LeakyReLU", "negative_slope": 0.2},
        {"type": "Dense", "units": 10},
        {"type": "Activation", "activation": "softmax"},
    ],
    "compile": {"optimizer": {"type": "SGD", "learning_rate": 0.01, "momentum": 0.9}},
}
EVERY_KIND["fit"]["early_stopping"] = {"monitor": "val_loss", "patience": 3}
EVERY_KIND["fit"]["reduce_lr_on_plateau"] = {"factor": 0.5, "patience": 0, "min_delta": 10.0}
# The newer kinds: PReLU, ELU, AlphaDropout, a regularizer and a constraint on each kernel, a
# schedule with clipping (Keras refuses a schedule with ReduceLROnPlateau, so that is above),
# and Keras's validation_split.
NEWER_KINDS = tiny_spec(epochs=2, train_size=500, validation_size=0, batch_size=32, seed=5) | {
    "name": "newer-kinds",
    "layers": [
        IMAGE,
        {
            "type": "Conv2D",
            "filters": 6,
            "kernel_size": 3,
            "kernel_constraint": {"type": "max_norm", "max_value": 3.0, "axis": [0, 1, 2]},
            "kernel_regularizer": {"type": "l1_l2", "l1": 0.0001, "l2": 0.001},
        },
        {"type": "MaxPooling2D"},
        {"type": "PReLU", "shared_axes": [1, 2]},
        {"type": "Flatten"},
        {"type": "AlphaDropout", "rate": 0.1},
        {
            "type": "Dense",
            "units": 16,
            "kernel_regularizer": {"type": "l2", "l2": 0.001},
            "kernel_constraint": {"type": "unit_norm"},
        },
        {"type": "ELU"},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ],
    "compile": {
        "optimizer": {
            "type": "Adam",
            "learning_rate": {
                "type": "ExponentialDecay",
                "initial_learning_rate": 0.01,
                "decay_steps": 5,
                "decay_rate": 0.8,
            },
            "clipnorm": 1.0,
        }
    },
}
NEWER_KINDS["fit"]["validation_split"] = 0.2

# Runs the downloaded script as a learner would, then reports what it trained.
RUNNER = """
import json, runpy, sys
import keras, numpy as np
script, model_file, report = sys.argv[1:]
program = runpy.run_path(script)
downloaded = keras.models.load_model(model_file)
weights = zip(program["model"].get_weights(), downloaded.get_weights(), strict=True)
with open(report, "w") as out:
    json.dump({
        "history": program["history"].history,
        "test": [program["test_loss"], program["test_accuracy"]],
        "same_weights": all(np.array_equal(a, b) for a, b in weights),
    }, out)
"""


def train(client: TestClient, worker: ServiceProcess, spec: dict[str, Any]) -> dict[str, Any]:
    created = client.post("/experiments", json=spec)
    assert created.status_code == 202, created.text
    finished = wait_finished(client, created.json()["id"], timeout=300)
    assert finished["status"] == "succeeded", (finished["error"], worker.log()[-3000:])
    return finished


def history(client: TestClient, experiment_id: str) -> list[tuple[float, ...]]:
    epochs = client.get(f"/experiments/{experiment_id}/history").json()["epochs"]
    return [tuple(epoch[metric] for metric in METRICS) for epoch in epochs]


def test_a_rerun_reproduces_the_history_exactly(client: TestClient, worker: ServiceProcess) -> None:
    original = train(client, worker, dropout_spec(fit=SMALL))
    rerun = client.post(f"/experiments/{original['id']}/rerun")
    assert rerun.status_code == 202, rerun.text
    again = wait_finished(client, rerun.json()["id"], timeout=300)
    assert again["status"] == "succeeded", (again["error"], worker.log()[-3000:])

    assert set(again["versions"]) == {"python", "tensorflow", "keras", "numpy", "kernels"}
    assert again["versions"]["kernels"] == "TensorFlow"  # the default, exact path
    assert again["reproduction"] == {
        "reproduced": True,
        "explanation": "every epoch's loss, accuracy, val_loss, val_accuracy are identical",
        "first_difference": None,
        "versions_differ": False,
        "original_versions": original["versions"],
    }
    assert (again["rerun_of"], again["spec_hash"]) == (original["id"], original["spec_hash"])
    assert history(client, again["id"]) == history(client, original["id"])
    assert len(history(client, again["id"])) == 2
    assert again["test_loss"] == original["test_loss"]


@pytest.mark.parametrize("spec", [EVERY_KIND, NEWER_KINDS], ids=lambda spec: spec["name"])
def test_the_notebook_script_trains_the_services_history(
    client: TestClient, worker: ServiceProcess, tmp_path: Path, spec: dict[str, Any]
) -> None:
    trained = train(client, worker, spec)
    experiment_id = trained["id"]
    script = tmp_path / "experiment.py"
    script.write_text(client.get(f"/experiments/{experiment_id}/notebook.py").text)
    model_file = tmp_path / "model.keras"
    model_file.write_bytes(client.get(f"/experiments/{experiment_id}/model").content)
    report = tmp_path / "report.json"

    environment = os.environ | {"MNIST_PATH": MNIST_PATH, "TF_CPP_MIN_LOG_LEVEL": "2"}
    environment.pop("PYTHONPATH", None)  # the script needs Keras and numpy, not the service
    ran = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script), str(model_file), str(report)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(report.read_text())

    by_epoch = list(zip(*(result["history"][metric] for metric in METRICS), strict=True))
    assert by_epoch == history(client, experiment_id)
    assert result["test"] == [trained["test_loss"], trained["test_accuracy"]]
    assert result["same_weights"]
