"""The Open Inference Protocol (v2) under /v2: metadata, health, readiness and infer, in the JSON
tensor form and the binary extension; and Triton's own HTTP client against a real server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient

from service import __version__
from service.config import Settings
from tests.factories import tiny_spec
from tests.helpers import (
    MNIST_PATH,
    UNKNOWN_ID,
    ServiceProcess,
    free_port,
    named,
    publish,
    put_alias,
    save_untrained_model,
    submit,
    wait_for,
)

HEADER_LENGTH = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_untrained_model(tmp_path_factory.mktemp("untrained") / "model.keras")


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    with np.load(MNIST_PATH) as data:
        images: np.ndarray = data["x_test"][:4]
    return images


@pytest.fixture
def served(client: TestClient, model_file: Path) -> str:
    return publish(client, model_file, name="v2-model", test_accuracy=0.9)


def predicted(client: TestClient, image: np.ndarray, model: str = "best") -> np.ndarray:
    response = client.post("/predict", json={"image": image.tolist(), "model": model})
    assert response.status_code == 200, response.text
    return np.array(response.json()["probabilities"], dtype=np.float32)


def infer_json(
    client: TestClient, path: str, tensor: dict[str, Any], **request: Any
) -> dict[str, Any]:
    response = client.post(path, json={"inputs": [{"name": "images", **tensor}], **request})
    assert response.status_code == 200, response.text
    assert HEADER_LENGTH not in response.headers
    body: dict[str, Any] = response.json()
    return body


def outputs(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {output["name"]: output for output in body["outputs"]}


def test_server_metadata_and_health(client: TestClient) -> None:
    assert client.get("/v2").json() == {
        "name": "mnist-lab",
        "version": __version__,
        "extensions": ["binary_tensor_data", "model_repository"],
    }
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_model_metadata_names_inputs_outputs_and_the_version(
    client: TestClient, served: str
) -> None:
    for path in ("/v2/models/best", f"/v2/models/best/versions/{served}"):
        assert client.get(path).json() == {
            "name": "best",
            "versions": [served],
            "platform": "tensorflow_graphdef",
            "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, 28, 28]}],
            "outputs": [
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
                {"name": "digit", "datatype": "INT64", "shape": [-1]},
            ],
        }
    assert client.get(f"/v2/models/{served}/ready").json() == {"name": served, "ready": True}


def test_json_infer_equals_predict_for_every_shape_and_datatype(
    client: TestClient, served: str, digits: np.ndarray
) -> None:
    expected = np.stack([predicted(client, image) for image in digits])
    put_alias(client, "production", served)
    for tensor in (
        {"datatype": "UINT8", "shape": [4, 28, 28], "data": digits.tolist()},
        {"datatype": "UINT8", "shape": [4, 784], "data": digits.ravel().tolist()},
        {"datatype": "FP32", "shape": [4, 28, 28], "data": (digits / 255.0).ravel().tolist()},
        {"datatype": "FP32", "shape": [4, 784], "data": digits.astype(float).ravel().tolist()},
    ):
        body = infer_json(client, "/v2/models/production/infer", tensor, id="req-1")
        assert body["model_name"] == "production"
        assert body["model_version"] == served
        assert body["id"] == "req-1"
        answered = outputs(body)
        assert answered["probabilities"]["shape"] == [4, 10]
        assert answered["probabilities"]["datatype"] == "FP32"
        probabilities = np.array(answered["probabilities"]["data"], np.float32).reshape(4, 10)
        np.testing.assert_allclose(probabilities, expected, atol=1e-6)
        assert answered["digit"] == {
            "name": "digit",
            "datatype": "INT64",
            "shape": [4],
            "data": expected.argmax(axis=1).tolist(),
        }
    single = infer_json(
        client,
        "/v2/models/best/infer",
        {"datatype": "UINT8", "shape": [28, 28], "data": digits[0].tolist()},
    )
    assert outputs(single)["digit"]["data"] == [int(expected[0].argmax())]


def test_binary_request_and_response_with_chosen_outputs(
    client: TestClient, served: str, digits: np.ndarray
) -> None:
    expected = np.stack([predicted(client, image) for image in digits[:2]])
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "images",
                    "datatype": "UINT8",
                    "shape": [2, 28, 28],
                    "parameters": {"binary_data_size": 2 * 784},
                }
            ],
            "outputs": [
                {"name": "digit"},
                {"name": "probabilities", "parameters": {"binary_data": True}},
            ],
        }
    ).encode()
    response = client.post(
        f"/v2/models/{served}/versions/{served}/infer",
        content=header + digits[:2].tobytes(),
        headers={HEADER_LENGTH: str(len(header))},
    )
    assert response.status_code == 200, response.text
    length = int(response.headers[HEADER_LENGTH])
    body = json.loads(response.content[:length])
    answered = outputs(body)
    assert answered["digit"]["data"] == expected.argmax(axis=1).tolist()
    assert answered["probabilities"]["parameters"] == {"binary_data_size": 80}
    raw = np.frombuffer(response.content[length:], dtype="<f4").reshape(2, 10)
    np.testing.assert_allclose(raw, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"inputs": []}, 400, "give exactly one input"),
        (
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [784], "data": [0] * 784}]},
            400,
            "unknown input 'x'",
        ),
        (
            {"inputs": [{"name": "images", "datatype": "INT8", "shape": [784], "data": [0] * 784}]},
            400,
            "FP32 or UINT8",
        ),
        (
            {"inputs": [{"name": "images", "datatype": "FP32", "shape": [3, 9], "data": [0] * 27}]},
            400,
            "not an image batch",
        ),
        (
            {"inputs": [{"name": "images", "datatype": "FP32", "shape": [784], "data": [0] * 783}]},
            400,
            "783 values",
        ),
        (
            {
                "inputs": [
                    {"name": "images", "datatype": "FP32", "shape": [784], "data": [-1] * 784}
                ]
            },
            400,
            "0-1",
        ),
        (
            {
                "inputs": [
                    {"name": "images", "datatype": "UINT8", "shape": [784], "data": [300] * 784}
                ]
            },
            400,
            "0 to 255",
        ),
        (
            {
                "inputs": [
                    {"name": "images", "datatype": "FP32", "shape": [784], "data": [0] * 784}
                ],
                "outputs": [{"name": "logits"}],
            },
            400,
            "unknown output",
        ),
    ],
)
def test_bad_infer_requests_are_400_in_the_protocols_error_body(
    client: TestClient, served: str, body: dict[str, Any], status: int, message: str
) -> None:
    response = client.post("/v2/models/best/infer", json=body)
    assert response.status_code == status
    assert set(response.json()) == {"error"}
    assert message in response.json()["error"]


def test_unknown_models_versions_and_untrained_experiments(client: TestClient, served: str) -> None:
    zeros = {"inputs": [{"name": "images", "datatype": "FP32", "shape": [784], "data": [0] * 784}]}
    queued = submit(client, named(tiny_spec(), "not-trained"))["id"]
    for path, status in (
        (f"/v2/models/{UNKNOWN_ID}", 404),
        (f"/v2/models/{UNKNOWN_ID}/ready", 404),
        (f"/v2/models/best/versions/{UNKNOWN_ID}", 404),
        (f"/v2/models/{queued}/ready", 409),
        ("/v2/models/Not_A_Name", 400),
    ):
        response = client.get(path)
        assert response.status_code == status, path
        assert set(response.json()) == {"error"}
    response = client.post(f"/v2/models/best/versions/{UNKNOWN_ID}/infer", json=zeros)
    assert response.status_code == 404
    assert "it is at version" in response.json()["error"]
    response = client.post("/v2/models/best/infer", content=b"{}", headers={HEADER_LENGTH: "99"})
    assert response.status_code == 400


def test_triton_client_lists_checks_reads_metadata_and_infers_like_predict(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    model_file: Path,
    digits: np.ndarray,
) -> None:
    port = free_port()
    settings = make_settings(port=port)
    with TestClient(
        __import__("service.api.app", fromlist=["create_app"]).create_app(settings)
    ) as setup:
        served = publish(setup, model_file, name="triton")
        put_alias(setup, "production", served)
    start_service(settings, "api")
    url = f"127.0.0.1:{port}"
    client = triton.InferenceServerClient(url)
    wait_for(lambda: _live(client), timeout=60, what="the API to answer")

    assert client.is_server_ready()
    index = client.get_model_repository_index()
    assert {"name": served, "version": served, "state": "READY", "reason": ""} in index
    assert {"name": "production", "version": served, "state": "READY", "reason": ""} in index
    assert client.is_model_ready("production")
    assert not client.is_model_ready(UNKNOWN_ID)
    metadata = client.get_model_metadata("production")
    assert metadata["versions"] == [served]
    assert [tensor["name"] for tensor in metadata["outputs"]] == ["probabilities", "digit"]

    batch = triton.InferInput("images", [2, 28, 28], "UINT8")
    batch.set_data_from_numpy(digits[:2])  # binary by default, as are the outputs
    result = client.infer("production", [batch], request_id="tc-1")
    assert result.get_response()["id"] == "tc-1"
    assert result.get_response()["model_version"] == served
    assert result.as_numpy("probabilities").shape == (2, 10)

    for image in digits:
        one = triton.InferInput("images", [1, 28, 28], "UINT8")
        one.set_data_from_numpy(image[None])
        answered = client.infer("production", [one])
        body = {"image": image.tolist(), "model": "production"}
        expected = httpx.post(f"http://{url}/predict", json=body).json()
        probabilities = np.array(expected["probabilities"], dtype=np.float32)
        np.testing.assert_array_equal(answered.as_numpy("probabilities")[0], probabilities)
        assert answered.as_numpy("digit").tolist() == [expected["digit"]]
    with pytest.raises(triton.InferenceServerException, match="no experiment or alias"):
        client.infer("nothing-here", [batch])
    client.close()


def _live(client: Any) -> bool:
    try:
        return bool(client.is_server_live())
    except Exception:
        return False


DEEP = 1000  # levels of JSON nesting: past Python's recursion limit


@pytest.mark.parametrize(
    ("body", "header_length", "message"),
    [
        # numpy's product of these sizes wraps to 0, which `data: []` matched.
        (
            {
                "inputs": [
                    {
                        "name": "images",
                        "datatype": "FP32",
                        "shape": [8589934592, 2147483648],
                        "data": [],
                    }
                ]
            },
            None,
            "has 0 values; shape [8589934592, 2147483648] needs 18446744073709551616",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "images",
                        "datatype": "UINT8",
                        "shape": [2**62, 4],
                        "parameters": {"binary_data_size": 0},
                    }
                ]
            },
            "binary",
            "needs 18446744073709551616",
        ),
        (
            {
                "inputs": [
                    {"name": "images", "datatype": "FP32", "shape": [1, 1, 1, 784], "data": []}
                ]
            },
            None,
            "is not an image batch",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "images",
                        "datatype": "UINT8",
                        "shape": [4, 784],
                        "parameters": {"binary_data_size": "3136"},
                    }
                ]
            },
            "binary",
            "binary_data_size must be a whole number of bytes (a JSON integer), not '3136'",
        ),
        (  # an empty UINT8 batch once reached numpy's min() of nothing: 500
            {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [0, 784], "data": []}]},
            None,
            "holds no image",
        ),
        (  # 784.0 is an integer in JSON Schema, as the OpenAPI schema declares the shape
            {"inputs": [{"name": "images", "datatype": "FP32", "shape": [784.0], "data": [1]}]},
            None,
            "input data has 1 values; shape [784] needs 784",
        ),
        (
            {
                "id": [[[["deep"]]]],
                "inputs": [
                    {"name": "images", "datatype": "FP32", "shape": [784], "data": [0] * 784}
                ],
            },
            None,
            "the request's id must be a string, not [[[[...]]]]",
        ),
    ],
)
def test_infer_requests_no_decoding_can_take_are_400_not_500(
    client: TestClient, body: dict[str, Any], header_length: str | None, message: str
) -> None:
    header = json.dumps(body).encode()
    content = header + (bytes(3136) if header_length else b"")
    headers = {HEADER_LENGTH: str(len(header))} if header_length else {}
    response = client.post(
        "/v2/models/best/infer",
        content=content,
        headers={"content-type": "application/json", **headers},
    )
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    "template",
    [
        "{}",
        '{{"inputs": [{{"name": "images", "datatype": "FP32", "shape": [784], "data": {}}}]}}',
        '{{"id": {}, "inputs": []}}',
        '{{"inputs": [{{"name": {}}}]}}',
    ],
)
def test_deeply_nested_infer_requests_are_400_like_other_routes_422(
    client: TestClient, template: str
) -> None:
    deep = template.format("[" * DEEP + "]" * DEEP)
    response = client.post(
        "/v2/models/best/infer", content=deep, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "too deeply" in response.json()["error"]
    for path in ("/predict", "/experiments"):
        response = client.post(path, content=deep, headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert "too deeply" in response.json()["detail"]
