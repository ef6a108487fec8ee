"""POST /predict and /predict/upload over HTTP with a really trained model.

Every input form reads the same digit; 500 test images read through the API exactly as the
model reads them offline; `best`, `latest`, aliases and ids pick the model; the cache keeps its
bound; and every bad input is a 4xx that never loads, let alone calls, a model.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.api.app import create_app
from service.config import Settings
from service.ml.data import Mnist, load_mnist, split
from service.ml.train import train
from service.schemas.experiments import ExperimentCreate
from service.schemas.predict import PredictRequest
from service.serving import resolver
from service.usecases.prediction import INLINE_MAX_IMAGES
from tests.factories import tiny_spec
from tests.helpers import (
    MNIST_PATH,
    UNKNOWN_ID,
    fail,
    publish,
    put_alias,
    runtime_of,
    submit,
)

Body = dict[str, Any]


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist() -> Mnist:
    return load_mnist(MNIST_PATH)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Flatten -> Dense 10 softmax, 2 epochs on 10,000 images (~90%), trained the service's way."""
    spec = ExperimentCreate.model_validate(tiny_spec(epochs=2, train_size=10_000))
    data = split(load_mnist(MNIST_PATH), validation_size=0, train_size=10_000)
    path = tmp_path_factory.mktemp("trained") / "model.keras"
    train(spec, data, evaluate=False).model.save(path)
    return path


@pytest.fixture(scope="module")
def offline(model_file: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The saved model as a user would run it: uint8 images in, probabilities out."""
    model = keras.models.load_model(model_file)

    def probabilities(images: np.ndarray) -> np.ndarray:
        return np.asarray(model((images / 255.0).astype(np.float32)))

    return probabilities


@pytest.fixture
def served(client: TestClient, model_file: Path) -> str:
    return publish(client, model_file, name="tiny-trained", test_accuracy=0.9)


def predict(client: TestClient, body: Body) -> Body:
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    answer: Body = response.json()
    return answer


def digits(answer: Body) -> list[int]:
    return [prediction["digit"] for prediction in answer["predictions"]]


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def on_paper(pixels: np.ndarray) -> bytes:
    """The digit drawn black on white and scaled up 10x, as a phone or a canvas would send it."""
    large = Image.fromarray(255 - pixels).resize((280, 280), Image.Resampling.BILINEAR)
    return png(np.asarray(large))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + b64(data)


def one_of_each_digit(mnist: Mnist, offline: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Test-set indices of one 0, one 1, ... one 9 that the model reads right and with confidence.

    PNG inputs are re-normalised (cropped, scaled to 20x20, centred) as MNIST itself was, which
    moves pixels a little; an image the model barely reads could flip, which says nothing about
    the service. A confident one must not.
    """
    probabilities = offline(mnist.x_test[:500])
    confident = (probabilities.max(axis=1) >= 0.9) & (
        probabilities.argmax(axis=1) == mnist.y_test[:500]
    )
    chosen = [int(np.flatnonzero(confident & (mnist.y_test[:500] == d))[0]) for d in range(10)]
    return np.array(chosen)


# -- input forms -------------------------------------------------------------------------------


def test_every_input_form_gives_the_same_digit(
    client: TestClient,
    served: str,
    mnist: Mnist,
    offline: Callable[[np.ndarray], np.ndarray],
) -> None:
    chosen = one_of_each_digit(mnist, offline)
    images = mnist.x_test[chosen]
    forms: dict[str, Body] = {
        "rows 0-255": {"images": images.tolist()},
        "flat 0-255": {"images": images.reshape(-1, 784).tolist()},
        "rows 0-1": {"images": (images / 255.0).tolist()},
        "flat 0-1": {"images": (images / 255.0).reshape(-1, 784).tolist()},
        "PNG 28x28": {"images_base64": [b64(png(image)) for image in images]},
        "PNG 10x black on white": {"images_base64": [data_url(on_paper(i)) for i in images]},
    }

    read = {form: digits(predict(client, body)) for form, body in forms.items()}
    for form, (name, data) in {
        "upload PNG 28x28": ("small", png),
        "upload PNG 10x black on white": ("paper", on_paper),
    }.items():
        files = [
            ("file", (f"{name}-{i}.png", data(image), "image/png"))
            for i, image in enumerate(images)
        ]
        response = client.post("/predict/upload", files=files)
        assert response.status_code == 200, response.text
        read[form] = digits(response.json())
    singles = [predict(client, {"image": image.tolist()})["digit"] for image in images]

    assert read == {form: list(range(10)) for form in read}
    assert singles == list(range(10))


def test_the_api_reads_500_test_images_exactly_as_the_model_does_offline(
    client: TestClient,
    settings: Settings,
    served: str,
    mnist: Mnist,
    offline: Callable[[np.ndarray], np.ndarray],
) -> None:
    chosen = np.random.default_rng(7).choice(len(mnist.x_test), size=500, replace=False)
    images, labels = mnist.x_test[chosen], mnist.y_test[chosen]
    batch = settings.max_predict_batch

    answered: list[int] = []
    for start in range(0, len(images), batch):
        answer = predict(client, {"images": images[start : start + batch].tolist()})
        assert answer["model"]["experiment_id"] == served
        answered.extend(digits(answer))
    expected = np.argmax(offline(images), -1)

    assert answered == expected.tolist()
    assert np.mean(np.array(answered) == labels) == np.mean(expected == labels)
    assert np.mean(expected == labels) > 0.8  # a model that reads digits, not a constant


def test_one_image_answers_a_digit_probabilities_and_the_model(
    client: TestClient,
    served: str,
    mnist: Mnist,
    offline: Callable[[np.ndarray], np.ndarray],
) -> None:
    answer = predict(client, {"image": mnist.x_test[0].tolist(), "model": served})

    expected = offline(mnist.x_test[:1])[0]
    assert set(answer) == {"digit", "probabilities", "assumed_scale", "model"}
    assert answer["digit"] == int(expected.argmax())
    np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-5)
    assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert answer["model"] == {
        "experiment_id": served,
        "name": "tiny-trained",
        "test_accuracy": pytest.approx(0.9),
    }


def test_a_batch_is_answered_in_order(
    client: TestClient,
    served: str,
    mnist: Mnist,
    offline: Callable[[np.ndarray], np.ndarray],
) -> None:
    images = mnist.x_test[one_of_each_digit(mnist, offline)][::-1]
    encoded = [b64(png(image)) for image in images]

    pixels = predict(client, {"images": images.tolist()})
    decoded = predict(client, {"images_base64": encoded})

    assert digits(pixels) == digits(decoded) == list(range(9, -1, -1))
    np.testing.assert_allclose(
        [p["probabilities"] for p in pixels["predictions"]], offline(images), atol=1e-5
    )
    assert set(pixels) == {"predictions", "model"}


@pytest.mark.parametrize(
    ("scale", "to_values", "assumed"),
    [
        ("auto", lambda image: image.tolist(), "0-255"),
        ("auto", lambda image: (image / 255.0).tolist(), "0-1"),
        ("0-255", lambda image: image.tolist(), "0-255"),
        ("0-255", lambda image: (image > 128).astype(int).tolist(), "0-255"),
        ("0-1", lambda image: (image / 255.0).tolist(), "0-1"),
    ],
)
def test_assumed_scale_is_reported(
    client: TestClient,
    served: str,
    mnist: Mnist,
    scale: str,
    to_values: Callable[[np.ndarray], Any],
    assumed: str,
) -> None:
    values = to_values(mnist.x_test[0])

    single = predict(client, {"image": values, "scale": scale})
    batch = predict(client, {"images": [values, values], "scale": scale})

    assert single["assumed_scale"] == assumed
    assert [p["assumed_scale"] for p in batch["predictions"]] == [assumed, assumed]


def test_auto_scale_is_decided_per_image(client: TestClient, served: str, mnist: Mnist) -> None:
    image = mnist.x_test[0]
    answer = predict(client, {"images": [image.tolist(), (image / 255.0).tolist()]})
    assert [p["assumed_scale"] for p in answer["predictions"]] == ["0-255", "0-1"]
    assert answer["predictions"][0]["digit"] == answer["predictions"][1]["digit"]


def test_base64_raw_data_url_and_wrapped_lines(
    client: TestClient, served: str, mnist: Mnist
) -> None:
    data = on_paper(mnist.x_test[0])
    wrapped = "\n".join(b64(data)[i : i + 76] for i in range(0, len(b64(data)), 76))
    unpadded = b64(data).rstrip("=")

    answers = [
        predict(client, {"image_base64": text})
        for text in (b64(data), data_url(data), wrapped, unpadded)
    ]

    assert {answer["digit"] for answer in answers} == {int(mnist.y_test[0])}
    assert {answer["assumed_scale"] for answer in answers} == {None}
    assert "predictions" not in answers[0]


def test_upload_answers_each_file_in_order_with_the_model_named(
    client: TestClient,
    model_file: Path,
    mnist: Mnist,
    offline: Callable[[np.ndarray], np.ndarray],
) -> None:
    best = publish(client, model_file, name="best", test_accuracy=0.95)
    other = publish(client, model_file, name="other", test_accuracy=0.85)
    put_alias(client, "staging", other)
    images = mnist.x_test[one_of_each_digit(mnist, offline)][[3, 1, 4, 1, 5, 9, 2, 6]]
    files = [("file", (f"{i}.png", on_paper(image), "image/png")) for i, image in enumerate(images)]

    default = client.post("/predict/upload", files=files)
    named = client.post("/predict/upload", files=files, data={"model": "staging"})

    assert default.status_code == named.status_code == 200
    assert default.json()["model"]["experiment_id"] == best
    assert named.json()["model"]["experiment_id"] == other
    assert digits(default.json()) == digits(named.json()) == [3, 1, 4, 1, 5, 9, 2, 6]
    assert {p["assumed_scale"] for p in default.json()["predictions"]} == {None}


# -- which model answers -----------------------------------------------------------------------


def test_best_latest_aliases_and_ids_pick_the_model(
    client: TestClient, model_file: Path, mnist: Mnist
) -> None:
    most_accurate = publish(client, model_file, name="accurate", test_accuracy=0.97)
    newest = publish(client, model_file, name="newest", test_accuracy=0.90)
    put_alias(client, "production", newest)
    image = {"image": mnist.x_test[0].tolist()}

    def answered_by(model: str | None) -> str:
        body = image if model is None else {**image, "model": model}
        experiment_id: str = predict(client, body)["model"]["experiment_id"]
        return experiment_id

    assert answered_by(None) == most_accurate
    assert answered_by("best") == most_accurate
    assert answered_by("latest") == newest
    assert answered_by("production") == newest
    assert answered_by(most_accurate) == most_accurate
    assert answered_by(newest) == newest
    upload = client.post(
        "/predict/upload",
        files={"file": ("digit.png", png(mnist.x_test[0]), "image/png")},
        data={"model": "production"},
    )
    assert upload.json()["model"]["experiment_id"] == newest


def test_a_model_trained_after_the_first_request_is_served_without_a_restart(
    client: TestClient, model_file: Path, mnist: Mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The resolved `best` is kept this long; shortened so that the test need not wait a second.
    monkeypatch.setattr("service.serving.resolver.RESOLVE_TTL_SECONDS", 0.2)
    image = {"image": mnist.x_test[0].tolist()}

    before = client.post("/predict", json=image)
    assert before.status_code == 404
    assert before.json()["error"] == "model_not_found"
    assert "POST /experiments" in before.json()["detail"]

    first = publish(client, model_file, name="first", test_accuracy=0.8)
    assert predict(client, image)["model"]["experiment_id"] == first

    better = publish(client, model_file, name="better", test_accuracy=0.9)
    assert predict(client, {**image, "model": better})["model"]["experiment_id"] == better
    wait_past_resolve_ttl()
    assert predict(client, image)["model"]["experiment_id"] == better


def wait_past_resolve_ttl() -> None:
    time.sleep(resolver.RESOLVE_TTL_SECONDS + 0.05)


def test_the_cache_keeps_its_bound_and_evicts_the_least_recently_used(
    make_settings: Callable[..., Settings], model_file: Path, mnist: Mnist
) -> None:
    image = mnist.x_test[0].tolist()
    with TestClient(create_app(make_settings(model_cache_size=2))) as client:
        cache = runtime_of(client).predictions.loader.cache
        a, b, c = (publish(client, model_file, name=name) for name in "abc")

        for model, expected in [
            (a, [a]),
            (b, [a, b]),
            (c, [b, c]),
            (b, [c, b]),
            (a, [b, a]),
            (a, [b, a]),
            (c, [a, c]),
        ]:
            assert (
                predict(client, {"image": image, "model": model})["model"]["experiment_id"] == model
            )
            assert cache.keys() == expected
            assert len(cache) <= 2


def test_by_default_the_cache_holds_a_class_of_thirty_two_models_each_beside_best_and_latest(
    client: TestClient,
) -> None:
    # Each student's model in use, and their next one, preloaded as it finishes, before they
    # ask: at 32 a class of 30 made LRU evict models still asked for (bench/class_load.py).
    assert runtime_of(client).predictions.loader.cache.capacity >= 2 * 30 + 2


def test_deleting_an_experiment_evicts_its_model(
    client: TestClient, served: str, mnist: Mnist
) -> None:
    cache = runtime_of(client).predictions.loader.cache
    put_alias(client, "production", served)
    predict(client, {"image": mnist.x_test[0].tolist(), "model": "production"})
    assert served in cache

    assert client.delete(f"/experiments/{served}").status_code == 204

    assert served not in cache
    for model in (served, "production", "best"):
        response = client.post("/predict", json={"image": mnist.x_test[0].tolist(), "model": model})
        assert response.status_code == 404
    assert len(cache) == 0


def test_an_experiment_that_has_not_succeeded_is_not_served(
    client: TestClient, served: str, mnist: Mnist
) -> None:
    image = mnist.x_test[0].tolist()
    for experiment_id, status in ((submit(client)["id"], "queued"), (fail(client), "failed")):
        response = client.post("/predict", json={"image": image, "model": experiment_id})
        assert response.status_code == 409
        assert response.json()["error"] == "model_not_ready"
        assert status in response.json()["detail"]
    assert len(runtime_of(client).predictions.loader.cache) == 0


def test_only_a_few_pixel_lists_for_a_warm_model_are_answered_on_the_event_loop(
    client: TestClient, served: str, mnist: Mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.serving.resolver.RESOLVE_TTL_SECONDS", 0.3)
    predictions = runtime_of(client).predictions
    image = mnist.x_test[0].tolist()

    def inline(**body: Any) -> str | None:
        model = predictions.warm_model(PredictRequest.model_validate(body).images_to_predict())
        return model and model.experiment_id

    assert inline(image=image) is None  # `best` needs a query and its model a load
    predict(client, {"image": image})
    assert inline(image=image) == served
    assert inline(images=[image] * INLINE_MAX_IMAGES) == served
    assert inline(images=[image] * (INLINE_MAX_IMAGES + 1)) is None
    assert inline(image_base64=b64(png(mnist.x_test[0]))) is None
    assert inline(image=image, model=served) is None  # resolved separately, not yet
    time.sleep(0.3)
    assert inline(image=image) is None  # the reference needs the database again
    predict(client, {"image": image})
    assert inline(image=image) == served
    client.delete(f"/experiments/{served}")
    assert inline(image=image) is None


def test_an_experiment_id_stays_on_the_event_loop_past_the_ttl_while_looked_up_again(
    client: TestClient, served: str, mnist: Mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A student asks for their own model every second or so: past the TTL the id's model
    # still answers on the loop, and the database is asked again in the background.
    monkeypatch.setattr("service.serving.resolver.RESOLVE_TTL_SECONDS", 0.2)
    predictions = runtime_of(client).predictions
    image = mnist.x_test[0].tolist()

    def inline(model: str) -> str | None:
        body = {"image": image, "model": model}
        warm = predictions.warm_model(PredictRequest.model_validate(body).images_to_predict())
        return warm and warm.experiment_id

    assert predict(client, {"image": image, "model": served})["model"]["experiment_id"] == served
    put_alias(client, "production", served)
    predict(client, {"image": image, "model": "production"})
    wait_past_resolve_ttl()
    assert inline(served) == served
    assert inline("production") is None  # a name may have moved: the request path looks
    assert predictions.resolver.wait_refreshed(timeout=10)
    assert inline(served) == served


def test_a_deleted_experiment_id_is_not_answered_once_looked_up_again(
    client: TestClient, served: str, mnist: Mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The change feed forgets a deleted experiment at once; should it miss one (another
    # process deleted it, and its change is not read yet), the background lookup does.
    monkeypatch.setattr("service.serving.resolver.RESOLVE_TTL_SECONDS", 0.2)
    predictions = runtime_of(client).predictions
    image = mnist.x_test[0].tolist()
    predict(client, {"image": image, "model": served})
    monkeypatch.setattr(predictions, "forget", lambda experiment_id: None)
    assert client.delete(f"/experiments/{served}").status_code == 204
    wait_past_resolve_ttl()

    assert predictions.resolver.recent(served) is not None  # the last stale answer
    assert predictions.resolver.wait_refreshed(timeout=10)
    assert predictions.resolver.recent(served) is None
    response = client.post("/predict", json={"image": image, "model": served})
    assert response.status_code == 404


# -- bad inputs --------------------------------------------------------------------------------


def small_png(side: int = 28, *, noise: bool = False) -> bytes:
    """A light square on black; with noise, random pixels that PNG cannot compress."""
    if noise:
        pixels = np.random.default_rng(0).integers(0, 256, (side, side), dtype=np.uint8)
    else:
        pixels = np.zeros((side, side), dtype=np.uint8)
        pixels[side // 4 : -side // 4, side // 3 : -side // 3] = 255
    return png(pixels)


ZEROS = [[0] * 28 for _ in range(28)]
# A well-formed image with something on it: an all-black one is refused as blank.
DOT = [*ZEROS[:14], [0] * 14 + [255] + [0] * 13, *ZEROS[15:]]
GOOD = small_png()


def raw(text: str) -> bytes:
    """A body Python's json module accepts but strict JSON does not (NaN, Infinity)."""
    return text.encode()


def with_value(value: str, *, field: str = "image") -> bytes:
    pixels = ["0"] * 784
    pixels[100] = value
    return raw(f'{{"{field}": [{", ".join(pixels)}]}}')


@dataclass(frozen=True)
class Bad:
    body: Body | bytes
    status: int
    error: str
    says: str
    settings: dict[str, Any] = field(default_factory=dict)
    upload: list[tuple[str, bytes]] | None = None  # multipart files instead of a JSON body
    form: dict[str, str] = field(default_factory=dict)


BAD_INPUTS: dict[str, Bad] = {
    # Wrong shapes.
    "27 rows": Bad({"image": ZEROS[:27]}, 422, "invalid_image", "has 27 rows"),
    "29 rows": Bad({"image": [*ZEROS, [0] * 28]}, 422, "invalid_image", "has 29 rows"),
    "ragged rows": Bad(
        {"image": [*ZEROS[:5], [0] * 27, *ZEROS[6:]]}, 422, "invalid_image", "row 5 has 27 values"
    ),
    "rows of 29": Bad({"image": [[0] * 29] * 28}, 422, "invalid_image", "row 0 has 29 values"),
    "785 values": Bad({"image": [0] * 785}, 422, "invalid_image", "has 785 values"),
    "783 values": Bad({"image": [0] * 783}, 422, "invalid_image", "has 783 values"),
    "no values": Bad({"image": []}, 422, "invalid_image", "has 0 values"),
    "rows and numbers": Bad({"image": [*ZEROS[:27], 0]}, 422, "invalid_image", "mixes rows"),
    "28x28x1": Bad({"image": [[[0]] * 28] * 28}, 422, "invalid_image", "must be numbers"),
    "a number": Bad({"image": 7}, 422, "invalid_request", "image"),
    "an object": Bad({"image": {"0": 0}}, 422, "invalid_request", "image"),
    "a batch image of the wrong shape": Bad(
        {"images": [DOT, ZEROS[:27]]}, 422, "invalid_image", "images[1]"
    ),
    # Values that are not numbers, not finite, or outside the range.
    "a string": Bad({"image": ["1", *[0] * 783]}, 422, "invalid_image", "is a string"),
    "a boolean": Bad({"image": [True, *[0] * 783]}, 422, "invalid_image", "is a boolean"),
    "null": Bad({"image": [None, *[0] * 783]}, 422, "invalid_image", "is null"),
    "NaN": Bad(with_value("NaN"), 422, "invalid_image", "index 100 is NaN"),
    "Infinity": Bad(with_value("Infinity"), 422, "invalid_image", "index 100 is infinite"),
    "-Infinity": Bad(with_value("-Infinity"), 422, "invalid_image", "is infinite"),
    "1e999": Bad(with_value("1e999"), 422, "invalid_image", "is infinite"),
    "NaN in a row": Bad(
        raw('{"image": [' + ", ".join(["[" + ", ".join(["NaN"] * 28) + "]"] * 28) + "]}"),
        422,
        "invalid_image",
        "row 0, column 0 is NaN",
    ),
    "NaN in a batch": Bad(
        raw('{"images": [' + json.dumps([0] * 783 + [1]) + ", [NaN" + ", 0" * 783 + "]]}"),
        422,
        "invalid_image",
        "images[1] value at index 0 is NaN",
    ),
    "an integer beyond float64": Bad(with_value("1" + "0" * 400), 422, "invalid_image", "outside"),
    "negative": Bad(with_value("-1"), 422, "invalid_image", "is -1, outside"),
    "above 255": Bad(with_value("256"), 422, "invalid_image", "is 256, outside 0-255"),
    "above 1 in 0-1": Bad(
        {"image": [2, *[0] * 783], "scale": "0-1"}, 422, "invalid_image", "outside 0-1"
    ),
    "an all-black image": Bad({"image": ZEROS}, 422, "invalid_image", "no digit found in image"),
    "an unknown scale": Bad({"image": DOT, "scale": "0-100"}, 422, "invalid_request", "scale"),
    # Encoded images that cannot be read, or are too large.
    "not base64": Bad({"image_base64": "not base64!"}, 422, "invalid_image", "not valid base64"),
    "not an image": Bad(
        {"image_base64": b64(b"hello, world")}, 422, "invalid_image", "not an image we can read"
    ),
    "a truncated PNG": Bad(
        {"image_base64": b64(GOOD[: len(GOOD) // 2])}, 422, "invalid_image", "could not be decoded"
    ),
    "an empty image": Bad({"image_base64": ""}, 422, "invalid_image", "is empty"),
    "a blank image": Bad(
        {"image_base64": b64(png(np.full((28, 28), 255, np.uint8)))},
        422,
        "invalid_image",
        "no digit found",
    ),
    "a data URL without base64": Bad(
        {"image_base64": "data:image/png,abc"}, 422, "invalid_image", "without ';base64'"
    ),
    "too many bytes": Bad(
        {"image_base64": b64(small_png(64, noise=True))},
        413,
        "too_large",
        "images may be at most 2,048 bytes",
        settings={"max_image_bytes": 2048},
    ),
    "too many pixels": Bad(
        {"image_base64": b64(small_png(100))},
        413,
        "too_large",
        "at most 2,500 pixels",
        settings={"max_image_pixels": 2500},
    ),
    "a body over MAX_BODY_BYTES": Bad(
        {"image": DOT}, 413, "too_large", "MAX_BODY_BYTES", settings={"max_body_bytes": 1024}
    ),
    # Batches: empty, over the limit, or not exactly one input.
    "an empty batch": Bad({"images": []}, 422, "invalid_request", "images"),
    "an empty base64 batch": Bad({"images_base64": []}, 422, "invalid_request", "images_base64"),
    "a batch over the limit": Bad(
        {"images": [DOT] * 5},
        422,
        "invalid_input",
        "5 images is over the limit of 4",
        settings={"max_predict_batch": 4},
    ),
    "a base64 batch over the limit": Bad(
        {"images_base64": [b64(GOOD)] * 5},
        422,
        "invalid_input",
        "over the limit of 4",
        settings={"max_predict_batch": 4},
    ),
    "no input": Bad({"model": "best"}, 422, "invalid_request", "got none"),
    "two inputs": Bad(
        {"image": DOT, "image_base64": b64(GOOD)},
        422,
        "invalid_request",
        "image and image_base64",
    ),
    "an unknown field": Bad({"image": DOT, "colour": "red"}, 422, "invalid_request", "colour"),
    "not JSON": Bad(raw("{image: 1"), 422, "invalid_request", "JSON"),
    # Models that cannot answer.
    "an unknown alias": Bad(
        {"image": DOT, "model": "production"}, 404, "model_not_found", "production"
    ),
    "an unknown id": Bad({"image": DOT, "model": UNKNOWN_ID}, 404, "model_not_found", UNKNOWN_ID),
    "a capitalised reference": Bad(
        {"image": DOT, "model": "Best"}, 422, "invalid_request", "did you mean 'best'?"
    ),
    "a misspelt reference": Bad(
        {"image": DOT, "model": "lates"}, 404, "model_not_found", "did you mean 'latest'?"
    ),
    "a model name that cannot exist": Bad(
        {"image": DOT, "model": "Best!"}, 422, "invalid_request", "model"
    ),
    # Uploads.
    "an upload that is not an image": Bad(
        {}, 422, "invalid_image", "'notes.txt' is not an image", upload=[("notes.txt", b"hello")]
    ),
    "an empty upload": Bad({}, 422, "invalid_image", "is empty", upload=[("empty.png", b"")]),
    "an upload without files": Bad({}, 422, "invalid_request", "file", upload=[]),
    "an upload too large": Bad(
        {},
        413,
        "too_large",
        "at most 2,048 bytes",
        settings={"max_image_bytes": 2048},
        upload=[("big.png", small_png(64, noise=True))],
    ),
    "an upload over the limit": Bad(
        {},
        422,
        "invalid_input",
        "5 files is over the limit of 4",
        settings={"max_predict_batch": 4},
        upload=[(f"{i}.png", GOOD) for i in range(5)],
    ),
    "an upload for an unknown model": Bad(
        {}, 404, "model_not_found", "nope", upload=[("digit.png", GOOD)], form={"model": "nope"}
    ),
}


@pytest.fixture(params=sorted(BAD_INPUTS))
def bad(request: pytest.FixtureRequest) -> Bad:
    case: Bad = BAD_INPUTS[request.param]
    return case


@pytest.fixture
def bad_client(
    bad: Bad, make_settings: Callable[..., Settings], model_file: Path
) -> Iterator[TestClient]:
    """A client on the settings the case needs, with a servable model that nothing loaded yet."""
    with TestClient(create_app(make_settings(**bad.settings))) as client:
        publish(client, model_file)
        yield client


def send(client: TestClient, bad: Bad) -> Any:
    if bad.upload is not None:
        files = [("file", (name, data, "image/png")) for name, data in bad.upload]
        # httpx sends a form without files urlencoded; the route must still refuse it cleanly.
        return client.post("/predict/upload", files=files or None, data=bad.form or None)
    if isinstance(bad.body, bytes):
        return client.post(
            "/predict", content=bad.body, headers={"content-type": "application/json"}
        )
    return client.post("/predict", json=bad.body)


def test_every_bad_input_is_a_4xx_that_never_reaches_a_model(
    bad_client: TestClient, bad: Bad
) -> None:
    cache = runtime_of(bad_client).predictions.loader.cache

    response = send(bad_client, bad)

    assert response.status_code == bad.status, response.text
    body = response.json()
    assert body["error"] == bad.error
    assert bad.says in body["detail"]
    assert len(cache) == 0  # no model was even loaded for it, so TensorFlow saw nothing


def test_return_input_answers_the_image_the_model_saw(
    client: TestClient, served: str, mnist: Mnist
) -> None:
    image = mnist.x_test[0]
    plain = predict(client, {"image": image.tolist(), "model": served})
    seen = predict(client, {"image": image.tolist(), "model": served, "return_input": True})
    assert "input" not in plain  # the default answer is as before
    assert seen["digit"] == plain["digit"]
    assert np.allclose(np.array(seen["input"]), image / 255, atol=1e-3)

    upload = client.post(
        "/predict/upload",
        files={"file": ("digit.png", on_paper(image))},
        data={"model": served, "return_input": "true"},
    )
    assert upload.status_code == 200, upload.text
    frame = np.array(upload.json()["predictions"][0]["input"])
    assert frame.shape == (28, 28)
    assert frame.min() >= 0
    assert frame.max() <= 1
