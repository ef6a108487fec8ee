"""POST /experiments/from-code and POST /notebooks against the app: the chapter's three nets
from a notebook file and from pasted cells with Keras's exact parameter counts, dry runs that
queue nothing, and refusals that name the line and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.export import notebook
from service.schemas.experiments import ExperimentCreate
from service.spec.fingerprint import normalised_spec
from tests.factories import NOTEBOOK_NETS, tiny_spec
from tests.helpers import notebook_of, unsaved_experiment

NETS = sorted(NOTEBOOK_NETS)
PYTHON = {"content-type": "text/x-python"}


def _normalised(body: dict[str, Any]) -> dict[str, Any]:
    return normalised_spec(ExperimentCreate.model_validate(body))


def _counts(summary: dict[str, Any]) -> tuple[int, int, int]:
    return (
        summary["total_params"],
        summary["trainable_params"],
        summary["non_trainable_params"],
    )


def _pasted_cells(body: dict[str, Any]) -> str:
    """The model, compile and fit cells of the body's exported notebook, pasted as one."""
    cells = notebook.cells(unsaved_experiment(body))
    return "\n\n".join(cell.code for cell in cells[3:6])


def _experiments(client: TestClient) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = client.get("/experiments").json()["data"]
    return data


@pytest.mark.parametrize("net", NETS)
def test_pasted_cells_of_each_chapter_net_give_its_spec_and_counts(
    client: TestClient, net: str
) -> None:
    factory, counts = NOTEBOOK_NETS[net]
    response = client.post(
        "/experiments/from-code", content=_pasted_cells(factory()), headers=PYTHON
    )
    assert response.status_code == 202, response.text
    (read,) = response.json()["experiments"]
    assert _counts(read["summary"]) == tuple(counts)
    assert read["spec"] == _normalised(factory())
    queued = read["experiment"]
    assert queued["status"] == "queued"
    assert queued["spec"] == read["spec"]
    assert [item["id"] for item in _experiments(client)] == [queued["id"]]


def test_a_dry_run_answers_what_was_read_and_queues_nothing(client: TestClient) -> None:
    code = (
        "model = keras.Sequential([keras.layers.Flatten(input_shape=[28, 28]),\n"
        '    keras.layers.Dense(10, activation="softmax", name="out")])\n'
        "model.summary()\n"
        'model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")\n'
        "model.fit(X_train, y_train, epochs=3, validation_data=(X_valid, y_valid))\n"
        "model.evaluate(X_test, y_test)\n"
    )
    response = client.post(
        "/experiments/from-code?dry_run=true", json={"code": code, "name": "pasted"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True
    (read,) = body["experiments"]
    assert (read["name"], read["experiment"], read["line"]) == ("pasted", None, 1)
    assert read["spec"]["fit"]["epochs"] == 3
    assert read["spec"]["compile"]["optimizer"]["type"] == "SGD"
    assert read["summary"]["total_params"] == 7850
    assert [(item["line"], item["code"]) for item in body["skipped"]] == [
        (2, 'name="out"'),
        (3, "model.summary()"),
        (6, "model.evaluate(X_test, y_test)"),
    ]
    assert _experiments(client) == []


def test_the_name_and_tags_come_with_the_code(client: TestClient) -> None:
    code = _pasted_cells(tiny_spec())
    response = client.post(
        "/experiments/from-code",
        json={"code": code, "name": "mine", "description": "from a cell", "tags": ["cells"]},
    )
    assert response.status_code == 202, response.text
    queued = response.json()["experiments"][0]["experiment"]
    assert (queued["name"], queued["description"], queued["tags"]) == (
        "mine",
        "from a cell",
        ["cells"],
    )
    named = client.post("/experiments/from-code?name=by-query", content=code, headers=PYTHON)
    assert named.json()["experiments"][0]["experiment"]["name"] == "by-query"


@pytest.mark.parametrize(
    ("code", "line", "column", "words"),
    [
        (
            "model = keras.Sequential([keras.layers.Flatten(),\n"
            "    keras.layers.Dense(10, activation=lambda x: x)])\nmodel.compile('sgd')\n",
            2,
            39,
            "a lambda is code",
        ),
        (
            "model = keras.Sequential([keras.layers.Flatten(),\n"
            "    keras.layers.Dense(10, activation='softmaks')])\nmodel.compile('sgd')\n",
            2,
            39,
            "did you mean 'softmax'?",
        ),
        (
            "model = keras.Sequential([keras.layers.Flatten(),\n"
            "    keras.layers.Dense(10, activation='relu')])\nmodel.compile('sgd')\n",
            2,
            5,
            "the last layer gives non-softmax output",
        ),
        (
            "model = keras.Sequential([keras.layers.Flatten(),\n"
            "    keras.layers.Dense(10, activation='softmax')])\n"
            "model.compile(optimizer=keras.optimizers.SGD(lr=0.01))\n",
            3,
            25,
            "'lr' is called 'learning_rate' in Keras 3",
        ),
        (
            "model = keras.Sequential([keras.layers.Flatten(),\n"
            "    keras.layers.Dense(10, activation='softmax')])\n"
            "model.compile('sgd')\nmodel.fit(x, y, epochs=0)\n",
            4,
            24,
            "greater than or equal to 1",
        ),
    ],
)
def test_a_refusal_names_the_line_and_column(
    client: TestClient, code: str, line: int, column: int, words: str
) -> None:
    response = client.post("/experiments/from-code", content=code, headers=PYTHON)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "code_refused"
    assert (body["details"][0]["line"], body["details"][0]["column"]) == (line, column)
    assert body["detail"].startswith(f"line {line}, column {column}: ")
    assert words in body["detail"]
    assert _experiments(client) == []


@pytest.mark.parametrize(
    "code",
    [
        "__import__('os').system('touch {marker}')",
        "model = keras.Sequential([keras.layers.Dense(().__class__.__bases__[0])])",
        "import subprocess\nsubprocess.call(['touch', '{marker}'])",
    ],
)
def test_code_that_tries_to_run_code_is_refused_and_nothing_runs(
    client: TestClient, code: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    response = client.post(
        "/experiments/from-code", content=code.format(marker=marker), headers=PYTHON
    )
    assert response.status_code == 422, response.text
    assert "never runs it" in response.json()["detail"]
    assert not marker.exists()


def test_code_with_nothing_to_train_is_refused(client: TestClient) -> None:
    response = client.post("/experiments/from-code", content="x = 1\nprint(x)\n", headers=PYTHON)
    assert response.status_code == 422
    assert response.json()["error"] == "nothing_to_train"
    assert "keras.Sequential" in response.json()["detail"]


def test_a_notebook_with_the_three_nets_gives_three_experiments(client: TestClient) -> None:
    bodies = [NOTEBOOK_NETS[net][0]() for net in NETS]
    document = json.dumps(notebook_of(*bodies))
    response = client.post(
        "/notebooks", files={"file": ("chapter 11.ipynb", document, "application/x-ipynb+json")}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["notebook"] == "chapter 11"
    assert len(body["experiments"]) == 3
    for read, net, spec in zip(body["experiments"], NETS, bodies, strict=True):
        assert read["spec"] == _normalised(spec)
        assert _counts(read["summary"]) == tuple(NOTEBOOK_NETS[net][1])
        queued = read["experiment"]
        assert (queued["tags"], queued["description"]) == (["chapter 11"], spec["name"])
    listed = client.get("/experiments", params={"tag": "chapter 11", "order": "created"})
    assert [item["description"] for item in listed.json()["data"]] == [b["name"] for b in bodies]


def test_a_notebook_dry_run_as_json_queues_nothing(client: TestClient) -> None:
    document = notebook_of(tiny_spec())
    response = client.post("/notebooks?dry_run=true&name=tiny-book", json=document)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["notebook"], body["dry_run"]) == ("tiny-book", True)
    assert body["experiments"][0]["spec"] == _normalised(tiny_spec())
    assert body["experiments"][0]["cell"] == 7  # the model's code cell, counting every cell
    assert _experiments(client) == []


@pytest.mark.parametrize(
    ("document", "error", "words"),
    [
        (
            {"nbformat": 4, "cells": [{"cell_type": "code", "source": "import keras\n"}]},
            "nothing_to_train",
            "the notebook 'notebook' builds no model to train",
        ),
        ({"cells": "no"}, "invalid_input", "send a Jupyter notebook"),
        (
            {"nbformat": 4, "cells": [{"cell_type": "code", "source": "model = keras.Model()"}]},
            "code_refused",
            "cell 1, line 1, column 9: the service trains Sequential models",
        ),
    ],
)
def test_a_notebook_that_cannot_be_read_is_refused(
    client: TestClient, document: dict[str, Any], error: str, words: str
) -> None:
    response = client.post("/notebooks", json=document)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == error
    assert words in response.json()["detail"]
