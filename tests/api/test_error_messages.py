"""Every request-validation 4xx reads as if a person wrote it: no framework wording, no regular
expressions, each problem once; a broken JSON body is pointed at, a body without its JSON
content type is told so."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import tiny_spec

FRAMEWORK_WORDING = ("Value error", "Input tag", "Field required", "match pattern", "Input should")
REGEX = re.compile(r"\^\[|\]\{\d|\$'")


def _readable(body: dict[str, Any]) -> None:
    text = json.dumps(body)
    for words in FRAMEWORK_WORDING:
        assert words not in text, body
    assert not REGEX.search(text), body


def test_malformed_json_names_line_column_and_text_around(client: TestClient) -> None:
    document = '{"name": "x",\n "layers": [}'
    response = client.post(
        "/experiments", content=document, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    body = response.json()
    assert "line 2, column 13" in body["detail"]
    assert '"layers": [>>>}' in body["detail"]
    assert body["details"] == [
        {
            "loc": ["body"],
            "msg": body["detail"],
            "type": "json_invalid",
            "line": 2,
            "column": 13,
        }
    ]


@pytest.mark.parametrize(
    ("headers", "says"),
    [({}, "without a Content-Type"), ({"content-type": "text/plain"}, "as 'text/plain'")],
)
def test_body_without_json_content_type_is_told_so(
    client: TestClient, headers: dict[str, str], says: str
) -> None:
    response = client.post("/experiments", content=json.dumps(tiny_spec()), headers=headers)

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert says in detail
    assert "'Content-Type: application/json'" in detail


def test_missing_fields_and_wrong_types_read_as_sentences(client: TestClient) -> None:
    response = client.post("/experiments", json={"name": "x"})
    body = response.json()

    assert body["detail"] == "layers is required; compile is required"
    _readable(body)
    response = client.get("/experiments", params={"limit": "ten"})
    assert response.json()["detail"] == "query.limit must be a whole number, not 'ten'"


def test_every_problem_of_a_body_comes_in_one_answer(client: TestClient) -> None:
    """Missing name and compile, and a net over MAX_PARAMS (5,000,000 by default): all three
    at once, not the limit in a second round once the fields are fixed."""
    layers = [
        {"type": "Flatten"},
        {"type": "Dense", "units": 8000, "activation": "relu"},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ]

    response = client.post("/experiments", json={"layers": layers})

    assert response.status_code == 422
    body = response.json()
    assert [(problem["loc"], problem["type"]) for problem in body["details"]] == [
        (["body", "compile"], "missing"),
        (["body", "name"], "missing"),
        (["body", "layers"], "limit"),
    ]
    assert "6,360,010 parameters" in body["detail"]
    assert "MAX_PARAMS" in body["detail"]
    _readable(body)
    also_validate = client.post("/experiments/validate", json={"layers": layers}).json()
    assert len(also_validate["details"]) == 3


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/experiments", "the body is required: send a JSON object with layers, compile and name"),
        ("/predict", "the body is required: send a JSON object with exactly one of image"),
    ],
)
def test_an_empty_body_names_what_is_required(client: TestClient, path: str, says: str) -> None:
    response = client.post(path, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert response.json()["detail"].startswith(says)


def test_a_place_the_message_names_is_not_said_twice(client: TestClient) -> None:
    spec = tiny_spec()
    spec["layers"] = [{"type": "Dense", "units": 10, "activation": "softmax"}]
    detail = client.post("/experiments", json=spec).json()["detail"]

    assert detail.startswith("layers[0] (Dense):")
    assert "Flatten" in detail


@pytest.mark.parametrize(
    ("method", "path", "payload", "says"),
    [
        ("put", "/models/Prod", {"experiment_id": "0" * 32}, "did you mean 'prod'?"),
        ("put", "/models/prod", {"experiment_id": "nope"}, "'nope' is not an experiment id"),
        ("get", "/models/Best", None, "did you mean 'best'?"),
        ("get", "/models/lates", None, "did you mean 'latest'?"),
    ],
)
def test_model_names_get_did_you_mean_and_no_regex(
    client: TestClient, method: str, path: str, payload: Any, says: str
) -> None:
    response = client.request(method, path, json=payload)

    assert response.status_code in {404, 422}
    assert says in response.json()["detail"]
    _readable(response.json())


def test_the_readme_example_copied_from_the_notebook_says_what_to_change(
    client: TestClient,
) -> None:
    """A learner types the notebook's cells as the README's spec: each 422 names the fix."""
    spec: dict[str, Any] = {
        "name": "leaky-relu-sgd",
        "layers": [
            {"type": "Flatten", "input_shape": [28, 28]},
            {"type": "Dense", "units": 300, "kernel_initializer": "he_normal"},
            {"type": "LeakyReLU"},
            {"type": "Dense", "units": 100, "kernel_initializer": "he_normal"},
            {"type": "LeakyReLU"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
        "compile": {
            "loss": "sparse_categorical_crossentropy",
            "optimizer": {"type": "SGD", "lr": 1e-3},
            "metrics": ["accuracy"],
        },
        "fit": {"epochs": 10, "validation_data": "(X_valid, y_valid)"},
    }
    detail = client.post("/experiments", json=spec).json()["detail"]
    assert "'lr' is called 'learning_rate' in Keras 3; write 'learning_rate'" in detail
    assert "leave out 'validation_data'" in detail
    assert '"validation_size" (5000)' in detail

    spec["compile"]["optimizer"] = {"type": "SGD", "learning_rate": 1e-3}
    del spec["fit"]["validation_data"]
    response = client.post("/experiments", json=spec)
    assert response.status_code == 202
    assert response.json()["summary"]["total_params"] == 266_610
