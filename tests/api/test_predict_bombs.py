"""Decompression amplification on /predict: images that weigh little but would decode into
far more pixels are refused from their headers, before any of them is decoded, and a request
naming no model decodes nothing at all."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFile

from service.api.app import create_app
from service.config import Settings
from tests.helpers import publish, save_untrained_model


def _bilevel_png(side: int) -> str:
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts images whose pixels Pillow decodes (ImageFile.load), as a spy: loads still run."""
    loads: list[int] = []
    real_load = ImageFile.ImageFile.load

    def counting_load(image: ImageFile.ImageFile) -> Any:
        loads.append(1)
        return real_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    return loads


def test_bombs_naming_no_model_are_refused_without_decoding(
    client: TestClient, decoded: list[int]
) -> None:
    response = client.post("/predict", json={"images_base64": [_bilevel_png(5000)] * 256})
    assert response.status_code == 404
    assert decoded == []


def test_bombs_for_a_real_model_are_refused_from_their_headers(
    client: TestClient, decoded: list[int], tmp_path: Path
) -> None:
    publish(client, save_untrained_model(tmp_path / "model.keras"))
    response = client.post("/predict", json={"images_base64": [_bilevel_png(5000)] * 256})
    assert response.status_code == 413
    assert "MAX_IMAGE_PIXELS" in response.json()["detail"]
    assert decoded == []


def test_a_request_whose_images_add_up_to_too_many_pixels_is_refused_before_decoding(
    settings: Settings, make_settings: Callable[..., Settings], decoded: list[int], tmp_path: Path
) -> None:
    limits = make_settings(max_image_pixels=1_000_000, max_request_pixels=4_000_000)
    with TestClient(create_app(limits)) as client:
        publish(client, save_untrained_model(tmp_path / "model.keras"))
        images = [_bilevel_png(1000)] * 5  # each within its limit, 5 M pixels together
        response = client.post("/predict", json={"images_base64": images})
        assert response.status_code == 413
        detail = response.json()["detail"]
        assert "images_base64[4]" in detail
        assert "MAX_REQUEST_PIXELS" in detail
        assert decoded == []
        upload = [("file", (f"{i}.png", base64.b64decode(images[0]))) for i in range(5)]
        assert client.post("/predict/upload", files=upload).status_code == 413
        assert decoded == []


def _digit_png(side: int) -> bytes:
    """A light stroke, a third of the side tall, on black: something to read."""
    image = Image.new("L", (side, side))
    image.paste(255, (side // 2 - side // 20, side // 3, side // 2 + side // 20, 2 * side // 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_client_past_its_decoding_budget_is_told_when_to_retry(
    settings: Settings, make_settings: Callable[..., Settings], decoded: list[int], tmp_path: Path
) -> None:
    # Three 100x100 images a client, refilled at one pixel a second: nothing refills here.
    budget = make_settings(
        max_request_pixels=30_000, decode_burst_pixels=30_000, decode_pixels_per_second=1
    )
    with TestClient(create_app(budget)) as client:
        publish(client, save_untrained_model(tmp_path / "model.keras"))
        image = base64.b64encode(_digit_png(100)).decode()
        upload = [("file", (f"{i}.png", _digit_png(100))) for i in range(2)]
        assert client.post("/predict/upload", files=upload).status_code == 200
        assert client.post("/predict", json={"image_base64": image}).status_code == 200
        spent = len(decoded)
        for refused in (
            client.post("/predict", json={"image_base64": image}),
            client.post("/predict", json={"images_base64": [image]}),
            client.post("/predict/upload", files=upload[:1]),
        ):
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"] == "decoding_budget_spent"
            assert "DECODE_PIXELS_PER_SECOND" in refused.json()["detail"]
            assert 1 <= int(refused.headers["Retry-After"]) <= 10_000
        assert len(decoded) == spent  # refused from the headers: nothing decoded
        # Pixel lists decode nothing and cost nothing; another client has its own budget.
        lists = client.post("/predict", json={"image": [[0] * 14 + [1] * 14] * 28})
        assert lists.status_code == 200, lists.text
        elsewhere = TestClient(client.app, client=("192.0.2.7", 50000))
        assert elsewhere.post("/predict", json={"image_base64": image}).status_code == 200


def test_the_default_budget_never_bites_someone_uploading_digits(
    client: TestClient, tmp_path: Path
) -> None:
    publish(client, save_untrained_model(tmp_path / "model.keras"))
    photo = [("file", ("photo.png", _digit_png(2000)))]  # 4 megapixels, a phone's photo
    drawing = base64.b64encode(_digit_png(280)).decode()  # the pad's canvas
    for _ in range(12):
        assert client.post("/predict/upload", files=photo).status_code == 200
        assert client.post("/predict", json={"image_base64": drawing}).status_code == 200


def test_the_burst_must_hold_the_largest_request(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="DECODE_BURST_PIXELS must be at least MAX_REQUEST"):
        make_settings(max_request_pixels=40_000, decode_burst_pixels=30_000)


def test_made_up_tokens_do_not_make_fresh_clients(
    settings: Settings, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # Reads are open (no PROTECT_READS), so /predict does not refuse a wrong token.
    budget = make_settings(
        api_token="s3cret",
        max_request_pixels=20_000,
        decode_burst_pixels=20_000,
        decode_pixels_per_second=1,
    )
    image = base64.b64encode(_digit_png(100)).decode()
    with TestClient(create_app(budget)) as client:
        publish(client, save_untrained_model(tmp_path / "model.keras"), headers=_bearer("s3cret"))
        codes = [
            client.post(
                "/predict", json={"image_base64": image}, headers=_bearer(f"made-up-{i}")
            ).status_code
            for i in range(3)
        ]
        assert codes == [200, 200, 429]
        # The real token's holder is a client of its own.
        answered = client.post("/predict", json={"image_base64": image}, headers=_bearer("s3cret"))
        assert answered.status_code == 200


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
