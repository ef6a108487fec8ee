"""The Python client against a live service: fit from Keras code and from a real
keras.Sequential on small slices, its history equal to /history, evaluate, predict, summary,
the epoch bar, a study's leaderboard, and refusals as one exception type."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import keras
import pytest

from mnist_lab import Lab, LabError
from service.config import Settings
from tests.helpers import STROKE, LiveService, ServiceProcess

CELL = """\
from tensorflow import keras
model = keras.models.Sequential([
    keras.layers.Flatten(input_shape=[28, 28]),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(loss="sparse_categorical_crossentropy",
              optimizer=keras.optimizers.Adam(learning_rate=1e-2), metrics=["accuracy"])
model.fit(X_train, y_train, epochs=5, validation_data=(X_valid, y_valid))
"""


@pytest.fixture
def lab(settings: Settings, start_service: Callable[..., ServiceProcess]) -> Iterator[Lab]:
    service = LiveService(settings, start_service)
    with Lab(service.url) as client:
        yield client


def test_fit_from_code_shows_epochs_and_gives_keras_history(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    run = lab.fit(CELL, epochs=2, name="from-code", train_size=500, validation_size=200)
    assert run.status == "succeeded", run.data.get("error")
    bar = capsys.readouterr().err
    assert "from-code" in bar
    assert "2/2" in bar
    assert "val_accuracy=" in bar

    epochs = lab.request("GET", f"/experiments/{run.id}/history")["epochs"]
    assert run.history == {
        metric: [epoch[metric] for epoch in epochs]
        for metric in ("loss", "accuracy", "val_loss", "val_accuracy")
    }
    assert len(run.history["loss"]) == 2
    assert run.evaluate() == [run.data["test_loss"], run.data["test_accuracy"]]

    (probabilities,) = run.predict(STROKE)
    assert len(probabilities) == 10
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-3)

    printed: list[str] = []
    run.summary(printed.append)
    assert "flatten (Flatten)" in printed[0]
    assert "Total params: 7,850" in printed[0]

    other = lab.fit(
        keras.Sequential(
            [
                keras.Input(shape=(28, 28)),
                keras.layers.Flatten(),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        ),
        epochs=1,
        name="from-keras",
        compile={"optimizer": "adam"},
        train_size=500,
        validation_size=0,
        progress=False,
    )
    assert other.status == "succeeded"
    assert other.data["summary"]["total_params"] == 784 * 16 + 16 + 16 * 10 + 10
    assert list(other.history) == ["loss", "accuracy"]
    compared = lab.compare([run.id, other.id])
    assert compared["ids"] == [run.id, other.id]
    rows = lab.experiments()
    assert {row["id"] for row in rows} >= {run.id, other.id}

    queued = lab.fit(CELL, name="later", wait=False)
    assert queued.status in ("queued", "running")
    assert queued.cancel().data["cancel_requested"] is True


def test_a_study_runs_its_trials_and_gives_its_leaderboard(lab: Lab) -> None:
    study = lab.study("batchnorm", epochs=1, train_size=300, progress=False)
    assert study.data["status"] == "finished"
    rows = study.leaderboard
    assert {row["label"] for row in rows} == {"plain", "BatchNormalization"}
    assert all(row["status"] == "succeeded" for row in rows)


def test_refusals_raise_one_exception_with_status_and_message(lab: Lab) -> None:
    with pytest.raises(LabError) as refused:
        lab.fit("model = keras.Sequential([keras.layers.Dense(lambda x: x)])", epochs=1)
    assert refused.value.status == 422
    assert "line 1, column 46: a lambda is code" in refused.value.message
    with pytest.raises(LabError) as missing:
        lab.experiment("0123456789abcdef0123456789abcdef")
    assert missing.value.status == 404


def test_the_url_and_token_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"error": "unauthorized", "detail": "the token is wrong"})

    monkeypatch.setenv("MNIST_LAB_URL", "http://lab.example:9000")
    monkeypatch.setenv("MNIST_LAB_TOKEN", "secret")
    with Lab(transport=httpx.MockTransport(answer)) as lab, pytest.raises(LabError) as refused:
        lab.experiments()
    assert (refused.value.status, refused.value.message) == (401, "the token is wrong")
    assert str(seen[0].url).startswith("http://lab.example:9000/experiments")
    assert seen[0].headers["authorization"] == "Bearer secret"
